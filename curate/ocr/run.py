"""`curate ocr`: render synthetic documents on Ray workers, chunk by chunk (document index ranges), and write them
as `ocr` task shards. A killed run resumes from its chunk markers; documents depend on (seed, index) only, so the
output is the same however the chunks were scheduled (issue 15)."""

from __future__ import annotations

import glob
import logging
import time
from pathlib import Path
from typing import Any

from curate.config import fingerprint, to_dict, to_yaml
from curate.core.chunks import SPOOL_DIR, ChunkWriter, WorkerPool, run_chunks
from curate.core.run_folder import open_run, paths_digest
from curate.ocr.corpus import Corpus
from curate.ocr.fonts import available_fonts
from curate.ocr.render import Document, Renderer, RenderSettings, load_backgrounds
from curate.ray_session import ray_session
from curate.stage2_config import OcrSynthConfig
from curate.tasks import Skip
from curate.tasks.ocr import Ocr
from curate.tasks.output import SAMPLE_SCHEMA, sample_row, write_task_shards

log = logging.getLogger(__name__)
STAGE = "ocr"


def make_renderer(cfg: OcrSynthConfig) -> Renderer:
    corpora = {}
    if cfg.zh_share < 1:
        corpora["en"] = Corpus(cfg.corpus_en, "en")
    if cfg.zh_share > 0:
        corpora["zh"] = Corpus(cfg.corpus_zh, "zh")
    settings = RenderSettings(short_side=(cfg.short_side[0], cfg.short_side[1]), zh_share=cfg.zh_share)
    return Renderer(settings, available_fonts(), corpora, load_backgrounds(cfg.backgrounds))


class OcrWorker:
    """A Ray actor that renders whole chunks of documents (fonts, corpora and backgrounds loaded once)."""

    def __init__(self, cfg: OcrSynthConfig, out: str) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.renderer = make_renderer(cfg)
        self.builder = Ocr()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        chunk = item["chunk"]
        start, stop = item["spec"]
        began = time.perf_counter()
        spool = ChunkWriter(self.out, STAGE, chunk, SAMPLE_SCHEMA)
        languages, skipped = {"en": 0, "zh": 0}, 0
        for index in range(start, stop):
            doc = self.renderer.render(self.cfg.seed, index)
            languages[doc.language] += 1
            for item in self.builder(document_record(doc, index)):
                if isinstance(item, Skip):
                    skipped += 1
                else:
                    spool.add(item.task, sample_row(item, doc.image))
        info = {
            "documents": stop - start,
            "samples": spool.close(),
            "languages": languages,
            "skipped_lines": skipped,
            "seconds": time.perf_counter() - began,
        }
        return {"chunk": chunk, "info": info}


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
    """Render cfg.count documents (or the ones a killed run left) as OCR samples; returns stats (stats.json)."""
    available_fonts()  # fail fast on missing fonts, before Ray starts
    make_renderer(cfg)  # and on missing corpora
    started = time.time()
    inputs = [*cfg.corpus_en, *cfg.corpus_zh, *cfg.backgrounds]
    identity = {"config": fingerprint(cfg), "input": paths_digest(p for g in inputs for p in sorted(glob.glob(g)))}
    with open_run(cfg.out_dir, STAGE, identity, to_dict(cfg), to_yaml(cfg), overwrite=overwrite) as run:
        if run.complete:
            log.info("%s is a finished ocr run of this config: nothing to do", cfg.out_dir)
            return run.read_stats()
        size = cfg.documents_per_chunk
        specs = [[start, min(start + size, cfg.count)] for start in range(0, cfg.count, size)]
        with ray_session(cfg.ray.address, cfg.ray.num_cpus):
            out = cfg.out_dir.resolve()
            pool = WorkerPool(OcrWorker, {"cfg": cfg, "out": str(out)}, cfg.workers or None)
            markers = run_chunks(run, STAGE, specs, pool, "ocr")
            shards = write_task_shards(pool, out, STAGE, markers, cfg.output.samples_per_shard)
            pool.close()
            workers = pool.size
        stats = _stats(cfg, markers, shards, workers, time.time() - started)
        run.finish(stats, scratch=(SPOOL_DIR,))
        return stats


def _stats(cfg: OcrSynthConfig, markers: dict, shards: dict[str, int], workers: int, elapsed: float) -> dict:
    languages = {"en": 0, "zh": 0}
    for info in markers.values():
        for lang, n in info["languages"].items():
            languages[lang] += n
    seconds = sum(info["seconds"] for info in markers.values())
    return {
        "name": cfg.name,
        "documents": sum(info["documents"] for info in markers.values()),
        "samples": sum(info["samples"].get("ocr", 0) for info in markers.values()),
        "shards": shards.get("ocr", 0),
        "languages": languages,
        "skipped_lines": sum(info["skipped_lines"] for info in markers.values()),
        "workers": workers,
        "chunks": len(markers),
        "elapsed_s": round(elapsed, 2),
        # rendering time inside the workers: Ray start-up and the shard cut are not in it
        "documents_per_s_per_core": round(cfg.count / seconds, 2) if seconds else 0.0,
    }
