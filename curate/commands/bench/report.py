"""Bench figures: each a measured value beside a baseline measured in the same run, printed as a table and
saved as JSON (written again after every part, so a part that fails leaves the earlier figures on disk)."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curate.core.atomic import write_bytes_atomic


@dataclass
class Figure:
    part: str  # P1..P5, peer
    measure: str  # what was measured, e.g. "CLIP stage, ViT-B-32, cpu"
    value: float | None  # curate's figure (None: it could not be measured; `note` says why)
    unit: str
    baseline: float | None = None  # the same measure for the baseline, in the same run
    baseline_name: str = ""
    goal: float | None = None  # the ratio issue 9 asks for, where it sets one
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        meets = None if self.goal is None or ratio is None else ratio >= self.goal
        return {**asdict(self), "ratio": None if ratio is None else round(ratio, 3), "meets_goal": meets}


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def save(path: Path, figures: list[Figure], started: float, info: dict[str, Any]) -> None:
    data = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": info,
        "figures": [_finite(f.as_dict()) for f in figures],
    }
    write_bytes_atomic(path, json.dumps(data, indent=2, allow_nan=False).encode())


def _finite(obj: Any) -> Any:
    """NaN and infinities as null: strict JSON readers refuse them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def table(figures: list[Figure]) -> str:
    """One line per figure: value, baseline, ratio, goal."""
    rows = [("part", "measure", "curate", "baseline", "ratio", "goal")]
    for f in figures:
        ratio = f.ratio
        goal = (
            ""
            if f.goal is None
            else (f"≥ {f.goal:g} " + ("met" if ratio is not None and ratio >= f.goal else "MISSED"))
        )
        rows.append(
            (
                f.part,
                f.measure,
                "n/a" if f.value is None else f"{_num(f.value)} {f.unit}",
                f"{_num(f.baseline)} {f.baseline_name}" if f.baseline is not None else f.baseline_name,
                "" if ratio is None else f"{ratio:.2f}",
                goal,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    notes = [f"  {f.part} {f.measure}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
