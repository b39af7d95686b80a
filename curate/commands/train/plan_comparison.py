"""The image-plan comparison of `make train-plans` (issue 18): finished `curate train` runs that differ only in
`image_plan`, side by side. Per run: the held-out OCR loss (mean over target tokens, from its eval report) and,
when the run evaluated it (eval.blank_images), the same loss with blank images; the steps, and the tokens per
held-out sample and per image as the run's own collator encodes them.

    python -m curate.commands.train.plan_comparison out/plans/qwen_vl out/plans/deepseek_vl2 --out out/plans
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from curate.commands.train.comparison import compare_main
from curate.commands.train.config import load_train
from curate.core.errors import ConfigError
from curate.format.tokenizer import make_tokenizer
from curate.train.data import Collator, find_shards, read_shards, split_holdout
from curate.train.pixels import ImageInput

COLUMNS = (
    "image_plan",
    "steps",
    "heldout_ocr_loss",
    "heldout_ocr_loss_blank_images",
    "heldout_ocr_tokens",
    "tokens_per_sample",
    "image_tokens_per_sample",
    "train_seconds",
)


def run_row(run: Path) -> dict[str, Any]:
    """One row of the comparison from a finished run folder."""
    for name in ("config.yaml", "eval_report.json", "stats.json"):
        if not (run / name).is_file():
            raise ConfigError(f"{run} is not a finished `curate train` run (no {name})")
    cfg = load_train(run / "config.yaml")
    report = json.loads((run / "eval_report.json").read_text())
    stats = json.loads((run / "stats.json").read_text())
    if "ocr" not in report["tasks"]:
        raise ConfigError(f"{run}: the eval report holds no ocr task")
    tok = make_tokenizer(cfg.model.tokenizer)
    collate = Collator(tok, ImageInput(cfg.image_plan, cfg.model.adapter.n_queries, cfg.image_size), cfg.data.seq_len)
    eval_shards = find_shards(cfg.data.eval) if cfg.data.eval else []
    _, held = split_holdout(find_shards(cfg.data.train), eval_shards, cfg.data.holdout_shards)
    totals, images = [], []
    for item in read_shards(held):
        for sample in item["samples"]:
            enc = collate.encode(sample)
            if enc is not None:
                totals.append(len(enc.input_ids))
                images.append(sum(1 for t in enc.input_ids if t == tok.ids["<imgpad>"]))
    return {
        "image_plan": cfg.image_plan,
        "steps": stats["steps"],
        "heldout_ocr_loss": report["tasks"]["ocr"]["loss"],
        # the same held-out batches with blank images (eval.blank_images): near the loss above = the images unused
        "heldout_ocr_loss_blank_images": report["tasks"]["ocr"].get("loss_blank_images"),
        "heldout_ocr_tokens": report["tasks"]["ocr"]["tokens"],
        "tokens_per_sample": round(statistics.mean(totals), 1) if totals else 0.0,
        "image_tokens_per_sample": round(statistics.mean(images), 1) if images else 0.0,
        "train_seconds": stats["train_seconds"],
        "skipped_samples": stats["skipped_samples"],
        "run": str(run),
    }


def _rows(runs: list[Path]) -> list[dict[str, Any]]:
    rows = [run_row(run) for run in runs]
    if len({(r["steps"], r["heldout_ocr_tokens"]) for r in rows}) > 1:
        print("warning: the runs differ in steps or held-out OCR tokens: not a like-for-like comparison")
    return rows


def main(argv: list[str] | None = None) -> int:
    return compare_main(
        argv, module="curate.commands.train.plan_comparison", doc=__doc__,
        title="Image plans: held-out OCR loss with the same decoder and steps", columns=COLUMNS, rows_of=_rows,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
