"""`curate ocr`: render documents in parallel processes and write them as `ocr` task shards."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from curate.build import TaskWriter, prepare_output
from curate.io.atomic import write_bytes_atomic
from curate.ocr.corpus import Corpus
from curate.ocr.fonts import available_fonts
from curate.ocr.render import Document, Renderer, RenderSettings, load_backgrounds
from curate.stage2_config import OcrSynthConfig
from curate.tasks import Example, Skip
from curate.tasks.ocr import Ocr
from curate.tasks.validate import check_sample

log = logging.getLogger(__name__)
_RENDERER: Renderer | None = None  # one per worker process


def make_renderer(cfg: OcrSynthConfig) -> Renderer:
    corpora = {}
    if cfg.zh_share < 1:
        corpora["en"] = Corpus(cfg.corpus_en, "en")
    if cfg.zh_share > 0:
        corpora["zh"] = Corpus(cfg.corpus_zh, "zh")
    settings = RenderSettings(short_side=(cfg.short_side[0], cfg.short_side[1]), zh_share=cfg.zh_share)
    return Renderer(settings, available_fonts(), corpora, load_backgrounds(cfg.backgrounds))


def _init_worker(cfg: OcrSynthConfig) -> None:
    global _RENDERER  # noqa: PLW0603 - the per-process renderer (fonts, corpora, backgrounds loaded once)
    _RENDERER = make_renderer(cfg)


def _render(args: tuple[int, int]) -> Document:
    assert _RENDERER is not None
    return _RENDERER.render(*args)


def document_record(doc: Document, index: int, source: str = "synthdog") -> dict[str, Any]:
    """The OCR builder's record for a rendered document."""
    return {
        "source": source,
        "id": f"{index:08d}",
        "image": f"{source}/{index:08d}.jpg",
        "width": doc.width,
        "height": doc.height,
        "lines": [{"text": line.text, "quad": line.quad} for line in doc.lines],
    }


def run_ocr(cfg: OcrSynthConfig, overwrite: bool = False) -> dict[str, Any]:
    """Render cfg.count documents and write them as OCR samples; returns stats (also in stats.json)."""
    available_fonts()  # fail fast on missing fonts, before any process starts
    make_renderer(cfg)  # and on missing corpora
    out = cfg.out_dir
    prepare_output(out, cfg, overwrite)  # deterministic: an unfinished run is simply redone
    workers = cfg.workers or os.cpu_count() or 1
    writer = TaskWriter(out / "ocr", cfg.output.samples_per_shard)
    builder, languages, skipped, started = Ocr(), {"en": 0, "zh": 0}, 0, time.time()
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(cfg,)) as pool:
        jobs = ((cfg.seed, i) for i in range(cfg.count))
        first_done = None
        for index, doc in enumerate(pool.map(_render, jobs, chunksize=4)):
            first_done = first_done or time.time()  # throughput excludes worker start-up (fonts, corpora)
            languages[doc.language] += 1
            for item in builder(document_record(doc, index)):
                if isinstance(item, Skip):
                    skipped += 1
                    continue
                _write(item, doc.image, writer)
            if (index + 1) % 100 == 0:
                log.info("ocr: %d/%d documents", index + 1, cfg.count)
    writer.flush()
    finished = time.time()
    elapsed = finished - started
    steady = (cfg.count - 1) / (finished - first_done) if cfg.count > 1 and finished > first_done else 0.0
    stats = {
        "name": cfg.name,
        "documents": cfg.count,
        "samples": writer.samples,
        "shards": writer.shards,
        "languages": languages,
        "skipped_lines": skipped,
        "workers": workers,
        "elapsed_s": round(elapsed, 2),
        "documents_per_s_per_core": round(steady / workers, 2),
    }
    write_bytes_atomic(out / "stats.json", json.dumps(stats, indent=2).encode())
    write_bytes_atomic(out / "_SUCCESS", b"")
    return stats


def _write(example: Example, image: bytes, writer: TaskWriter) -> None:
    sample = example.to_json()
    errors = check_sample(sample)
    if errors:
        raise RuntimeError(f"synthetic OCR sample {example.key} is invalid: {errors}")
    writer.add(sample, image)
