"""stats.json, the funnel plot and the summary table, all derived from the ledger."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import __version__
from curate.core.atomic import write_atomic, write_bytes_atomic
from curate.core.schema import SCHEMA_VERSION

SCORE_COLUMNS = ("width", "height", "aspect_ratio", "caption_words", "lang_score", "clip_score")
INGEST_STAGES = ("download", "image")


def stage_of(reason: str, reason_stages: dict[str, str] | None = None) -> str:
    """The stage that wrote `reason`: its name in `reason_stages` (the reason, or its part before ':'), else
    that part (filters name their reasons after themselves; ingest reasons after download/image)."""
    prefix = reason.split(":", 1)[0]
    stages = reason_stages or {}
    return stages.get(reason) or stages.get(prefix) or prefix


def compute(
    ledger: pa.Table,
    name: str,
    stages: list[str],
    skipped: dict[str, str],
    run: dict[str, Any],
    *,
    reason_stages: dict[str, str] | None = None,
) -> dict:
    """Counts by reason, the funnel in stage order, score quantiles and run facts. `reason_stages` names the
    stage of reasons not named after it (the dedup stages' duplicate:* and contaminated:*)."""
    reasons = Counter(r for r in ledger.column("reject_reason").to_pylist() if r is not None)
    input_rows = ledger.num_rows
    kept_rows = input_rows - sum(reasons.values())
    by_stage = Counter()
    for reason, count in reasons.items():
        by_stage[stage_of(reason, reason_stages)] += count
    remaining, funnel = input_rows, [{"stage": "input", "rejected": 0, "remaining": input_rows}]
    for stage in [*INGEST_STAGES, *stages]:
        remaining -= by_stage.get(stage, 0)
        funnel.append(
            {"stage": stage, "rejected": by_stage.get(stage, 0), "remaining": remaining, "skipped": stage in skipped}
        )
    langs = Counter(x for x in ledger.column("lang").to_pylist() if x)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "input_rows": input_rows,
        "kept_rows": kept_rows,
        "rejected": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "funnel": funnel,
        "skipped_filters": skipped,
        "scores": {c: _quantiles(ledger.column(c)) for c in SCORE_COLUMNS},
        "languages": dict(langs.most_common(15)),
        "curate_version": __version__,
        **run,
    }


def _quantiles(column: pa.ChunkedArray) -> dict[str, float | int | None]:
    values = pc.drop_null(column).to_numpy(zero_copy_only=False).astype(float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"count": 0}
    q = np.quantile(values, [0, 0.1, 0.5, 0.9, 1])
    return {
        "count": int(values.size),
        "min": float(q[0]),
        "p10": float(q[1]),
        "p50": float(q[2]),
        "p90": float(q[3]),
        "max": float(q[4]),
    }


def write(out: Path, stats: dict) -> None:
    write_bytes_atomic(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False).encode())
    write_atomic(out / "funnel.png", lambda tmp: _plot_funnel(stats, tmp))


def _plot_funnel(stats: dict, path: Path) -> None:
    from curate.inspect.plots import funnel_figure

    path.write_bytes(funnel_figure(stats))
