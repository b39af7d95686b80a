"""The table `curate build` prints and its report page shows: samples and skips per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_table(stats: dict[str, Any], out: Path) -> str:
    lines = [f"curate build {stats['name']} -> {out}", f"  {'task':<20}{'samples':>9}  skipped (reason: count)"]
    for task, info in stats["tasks"].items():
        skips = ", ".join(f"{r}: {c}" for r, c in info["skipped"].items()) or "-"
        lines.append(f"  {task:<20}{info['samples']:>9}  {skips}")
    lines.append(f"  {stats['elapsed_s']:.1f} s")
    return "\n".join(lines)
