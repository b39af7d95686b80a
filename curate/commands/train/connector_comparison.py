"""The connector comparison of `make train-connectors` (issue 19): finished `curate train` runs on the shapes
grounding set that differ in `model.connector`, one row per connector and, where the run evaluated SparseVLM
pruning (`eval.sparse`), per keep ratio with and without recycling.

    python -m curate.commands.train.connector_comparison out/connectors/* --out out/connectors
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from curate.commands.train.comparison import compare_main
from curate.core.errors import ConfigError

COLUMNS = ("connector", "keep_ratio", "recycle", "mean_iou", "mean_box_iou", "iou50", "decoder_flops")
TASK = "ref_grounding"


def run_rows(run: Path) -> list[dict[str, Any]]:
    """The rows of one finished run: its unpruned generation measures, then its SparseVLM rows."""
    report_file = run / "eval_report.json"
    if not report_file.is_file() or not (run / "_SUCCESS").exists():
        raise ConfigError(f"{run} is not a finished `curate train` run (no eval_report.json or _SUCCESS)")
    report = json.loads(report_file.read_text())
    connector = report.get("connector") or "qwen_resampler"
    if report.get("sparse"):
        return [{"connector": connector, **{k: row[k] for k in COLUMNS[1:]}} for row in report["sparse"]]
    measures = report["tasks"].get(TASK)
    if not measures or "mean_iou" not in measures:
        raise ConfigError(f"{run}: the eval report holds no {TASK} generation measures")
    return [
        {
            "connector": connector,
            "keep_ratio": 1.0,
            "recycle": False,
            "mean_iou": measures["mean_iou"],
            "mean_box_iou": measures["mean_box_baseline_iou"],
            "iou50": measures["iou_at_0.5"],
            "decoder_flops": None,  # measured only on the SparseVLM path
        }
    ]


def main(argv: list[str] | None = None) -> int:
    return compare_main(
        argv, module="curate.commands.train.connector_comparison", doc=__doc__,
        title="Connectors and SparseVLM pruning on the shapes grounding set", columns=COLUMNS,
        rows_of=lambda runs: [row for run in runs if run.is_dir() for row in run_rows(run)],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
