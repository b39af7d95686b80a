"""Data-Juicer's side of the dedup peer comparison (issue 17); runs under the Data-Juicer venv's Python.

`python peer_dj_dedup.py SAMPLES.jsonl OUT.json NUM_PROC`, SAMPLES.jsonl lines {"key", "image", "text"}:
Data-Juicer's `image_deduplicator` (method phash, consider_text False, other parameters at their defaults)
through its own execution (NestedDataset.process -> Deduplicator.run: an HF datasets map computing each
sample's imagededup PHash with num_proc workers, then one sequential filter keeping the first sample of
each identical hash string). Only `process` is timed. Writes OUT.json
{"kept": [keys in order], "seconds", "samples", "method", "data_juicer"}.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time


def main(samples: str, out: str, num_proc: int) -> None:
    # Data-Juicer's LazyLoader pip-installs a missing imagededup (unpinned) on first use: refuse instead.
    if importlib.util.find_spec("imagededup") is None:
        sys.exit("imagededup is not installed in this venv (`make bench-peer` pins it)")
    import datasets
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    datasets.disable_caching()  # no reuse of cached results between runs
    datasets.disable_progress_bars()
    import data_juicer
    from data_juicer.core.data import NestedDataset
    from data_juicer.ops import load_ops

    rows = []
    for line in open(samples, encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            # Data-Juicer's default keys: `images` (a list of paths) and `text`; `key` rides along as a column.
            rows.append({"key": str(row["key"]), "images": [row["image"]], "text": row.get("text") or ""})
    dataset = NestedDataset(datasets.Dataset.from_list(rows))
    recipe = [
        {
            "image_deduplicator": {
                "method": "phash",
                "consider_text": False,
                "num_proc": num_proc,
                "auto_op_parallelism": False,
            }
        }
    ]
    ops = load_ops(recipe)
    started = time.perf_counter()
    kept = dataset.process(ops, open_monitor=False)
    seconds = time.perf_counter() - started
    result = {
        "kept": list(kept["key"]),
        "seconds": seconds,
        "samples": len(rows),
        "method": "phash",
        "data_juicer": data_juicer.__version__,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
