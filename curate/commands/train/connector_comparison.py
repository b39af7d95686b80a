"""The connector comparison of `make train-connectors` (issue 19): finished `curate train` runs on the shapes
grounding set that differ in `model.connector`, one row per connector and, where the run evaluated SparseVLM
pruning (`eval.sparse`), per keep ratio with and without recycling.

    python -m curate.commands.train.connector_comparison out/connectors/* --out out/connectors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curate.core.atomic import write_bytes_atomic
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


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Connectors and SparseVLM pruning on the shapes grounding set",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join("-" if row[c] is None else str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curate.commands.train.connector_comparison", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="finished curate train run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for comparison.json and comparison.md")
    args = parser.parse_args(argv)
    try:
        rows = [row for run in args.runs if run.is_dir() for row in run_rows(run)]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "comparison.json", json.dumps(rows, indent=2).encode())
    write_bytes_atomic(args.out / "comparison.md", markdown(rows).encode())
    print(markdown(rows), end="")
    print(f"-> {args.out / 'comparison.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
