"""P4: `curate ocr` documents/s per core (one worker process, shards written and every sample validated) vs
the bare renderer called in this process."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from curate import stage2_config
from curate.bench.report import Figure
from curate.ocr.run import make_renderer, run_ocr

log = logging.getLogger(__name__)


def bench_ocr(config_path: str, documents: int, work: Path) -> Figure:
    cfg = stage2_config.load_ocr(config_path, [f"count={documents}", "workers=1", f"output.dir={work / 'ocr'}"])
    log.info("P4: bare renderer, the same %d documents in-process", documents)
    renderer = make_renderer(cfg)
    renderer.render(cfg.seed, 0)  # warm: fonts and backgrounds load lazily (curate's rate skips its first too)
    started = time.perf_counter()
    for i in range(1, documents):
        renderer.render(cfg.seed, i)
    raw = (documents - 1) / (time.perf_counter() - started) if documents > 1 else float("nan")
    log.info("P4: curate ocr, %d documents on one worker", documents)
    stats = run_ocr(cfg, overwrite=True)
    return Figure(
        part="P4",
        measure=f"OCR rendering (en+zh), {documents} documents, 1 worker",
        value=stats["documents_per_s_per_core"],
        unit="docs/s/core",
        baseline=raw,
        baseline_name="bare renderer in-process",
        details={"documents": documents, "elapsed_s": stats["elapsed_s"], "samples": stats["samples"]},
    )
