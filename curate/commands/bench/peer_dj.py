"""Data-Juicer's side of the peer comparison; runs under the Data-Juicer venv's Python (`make bench-peer`).

`python peer_dj.py SAMPLES.jsonl CLIP_DIR OUT.json NUM_PROC`: the four filters as one
Data-Juicer recipe (image_shape_filter, image_aspect_ratio_filter, language_id_score_filter,
image_text_similarity_filter) through its own execution (NestedDataset.process: HF datasets map + filter
with num_proc workers). Only `process` is timed, as curate's side times only its Ray Data execution; model
loading in the workers is inside both.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(samples: str, clip_dir: str, out: str, num_proc: int) -> None:
    import datasets
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    datasets.disable_caching()  # no reuse of cached results between runs
    datasets.disable_progress_bars()
    import data_juicer
    from data_juicer.core.data import NestedDataset
    from data_juicer.ops import load_ops

    rows = [json.loads(line) for line in open(samples, encoding="utf-8")]
    dataset = NestedDataset(datasets.Dataset.from_list(rows))
    common = {"num_proc": num_proc, "auto_op_parallelism": False}
    # Pass-through thresholds: every sample reaches and passes every filter in both tools, so both do the
    # whole work of the four filters on every sample (curate's side uses the same).
    recipe = [
        {"image_shape_filter": {"min_width": 1, "min_height": 1, **common}},
        {"image_aspect_ratio_filter": {"min_ratio": 0.0, "max_ratio": 1e9, **common}},
        {"language_id_score_filter": {"lang": "", "min_score": 0.0, **common}},
        {"image_text_similarity_filter": {"hf_clip": clip_dir, "min_score": -1.0, "max_score": 1.0, **common}},
    ]
    ops = load_ops(recipe)
    started = time.perf_counter()
    kept = dataset.process(ops, open_monitor=False)
    seconds = time.perf_counter() - started
    result = {"version": data_juicer.__version__, "samples": len(rows), "kept": len(kept), "seconds": seconds}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    # Offline, with caches inside the bench folder; DATA_JUICER_MODELS_CACHE holds lid.176.bin (set by peer.py).
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
