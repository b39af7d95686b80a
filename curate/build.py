"""`curate build`: sources -> task builders -> per-task WebDataset shards + Parquet parts + stats, on Ray Data.

Each source says how its records split into chunks (`Source.chunks`); a pool of Ray workers builds chunk after
chunk, decoding and re-encoding images there, and writes the chunk's samples per task into spool parts. The
driver holds only the chunk markers (counters). When every chunk is done, the spool is cut into fixed-size shards
per task, in chunk order, so the output is the same however the chunks were scheduled, and a killed build resumes
from its markers (issue 15).

Every Example is checked against the format rules before it is written (a failure is a builder bug and stops
the build). Records a builder cannot use are counted per task and reason, never dropped silently.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.config import fingerprint, to_dict, to_yaml
from curate.core.chunks import SPOOL_DIR, ChunkWriter, WorkerPool, run_chunks
from curate.core.run_folder import RunFolder, open_run, paths_digest
from curate.io.images import TarReader, read_image_bytes, to_jpeg
from curate.ray_session import ray_session
from curate.schema import SCHEMA_VERSION
from curate.sources.base import Source
from curate.stage2_config import BuildConfig
from curate.tasks import TASKS, Skip
from curate.tasks.output import SAMPLE_SCHEMA, sample_row, write_task_shards

log = logging.getLogger(__name__)
STAGE = "build"


def build_records(source: Source, records: Iterator[dict[str, Any]], tars: TarReader) -> Iterator[Any]:
    """(task, row) for every sample built from `records`, or (task, Skip) for what a builder could not use; a
    `None` task marks the end of each record. The one build loop: the Ray workers and the bench's bare loop."""
    builders = [TASKS[t]() for t in source.tasks]
    for record in records:
        image = _image_bytes(record, source.require_local_images, tars)
        for builder in builders:
            for item in builder(record):
                if isinstance(item, Skip):
                    yield builder.name, item
                elif isinstance(image, Skip) and item.images:
                    yield builder.name, image
                else:
                    yield builder.name, sample_row(item, None if isinstance(image, Skip) else image)
        yield None, None


def _image_bytes(record: dict[str, Any], required: bool, tars: TarReader) -> bytes | Skip | None:
    """JPEG bytes of the record's image; a Skip when it is needed but missing or undecodable."""
    if "image" not in record:
        return None
    try:
        if record.get("image_bytes") is not None:  # generated in memory (synthetic sources) or read from a shard
            return to_jpeg(record["image_bytes"])
        path = record.get("image_file")
        if not path:
            return Skip("image_not_local") if required else None
        return to_jpeg(read_image_bytes(path, record.get("image_member"), tars))
    except FileNotFoundError:
        return Skip("image_not_found")
    except Exception:  # noqa: BLE001 - undecodable image bytes are bad data
        return Skip("image_decode_error")


class BuildWorker:
    """A Ray actor that builds whole chunks: records of one source chunk -> spool parts per task."""

    def __init__(self, cfg: BuildConfig, out: str) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.tars = TarReader()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        chunk = item["chunk"]
        source_index, spec = item["spec"]
        source = self.cfg.sources[source_index]
        began = time.perf_counter()
        spool = ChunkWriter(self.out, STAGE, chunk, SAMPLE_SCHEMA)
        skipped: dict[str, Counter] = defaultdict(Counter)
        records = 0
        for task, item in build_records(source, source.read_chunk(spec), self.tars):
            if task is None:
                records += 1
            elif isinstance(item, Skip):
                skipped[task][item.reason] += 1
            else:
                spool.add(task, item)
        samples = spool.close()
        info = {"source": source.name, "records": records, "samples": samples, "skipped": skipped}
        info["seconds"] = round(time.perf_counter() - began, 4)  # this chunk's work inside its worker
        return {"chunk": chunk, "info": info}


def chunk_specs(cfg: BuildConfig) -> list[Any]:
    """[source index, chunk descriptor] for every chunk of every source, in source order."""
    return [[i, chunk] for i, source in enumerate(cfg.sources) for chunk in source.chunks(cfg.records_per_chunk)]


def run_build(cfg: BuildConfig, overwrite: bool = False) -> dict[str, Any]:
    """Build (or resume) every task of every source; returns the stats written to stats.json."""
    started = time.time()
    identity = {
        "config": fingerprint(cfg),
        "input": paths_digest(p for source in cfg.sources for p in source.input_paths()),
    }
    with open_run(cfg.out_dir, STAGE, identity, to_dict(cfg), to_yaml(cfg), overwrite=overwrite) as run:
        if run.complete:
            log.info("%s is a finished build of this config: nothing to do", cfg.out_dir)
            return run.read_stats()
        specs = chunk_specs(cfg)
        log.info("build %s: %d sources in %d chunks", cfg.name, len(cfg.sources), len(specs))
        with ray_session(cfg.ray.address, cfg.ray.num_cpus):
            out = cfg.out_dir.resolve()
            pool = WorkerPool(BuildWorker, {"cfg": cfg, "out": str(out)})
            work_started = time.time()
            markers = run_chunks(run, STAGE, specs, pool, "build")
            shards = write_task_shards(pool, out, STAGE, markers, cfg.output.samples_per_shard)
            pool.close()
            timing = {"elapsed_s": time.time() - started, "work_s": time.time() - work_started, "workers": pool.size}
        return _finish(run, cfg, markers, shards, timing)


def _finish(run: RunFolder, cfg: BuildConfig, markers: dict, shards: dict[str, int], timing: dict) -> dict:
    samples: Counter = Counter()
    skipped: dict[str, Counter] = defaultdict(Counter)
    per_source: dict[str, Counter] = defaultdict(Counter)
    for info in markers.values():
        samples.update(info["samples"])
        per_source[info["source"]].update(info["samples"])
        for task, reasons in info["skipped"].items():
            skipped[task].update(reasons)
    tasks = sorted(set(samples) | set(skipped))
    stats = {
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "tasks": {
            t: {"samples": samples[t], "shards": shards.get(t, 0), "skipped": dict(sorted(skipped[t].items()))}
            for t in tasks
        },
        "sources": {s.name: dict(sorted(per_source[s.name].items())) for s in cfg.sources if s.name in per_source},
        "records": sum(info["records"] for info in markers.values()),
        "worker_s": round(sum(info["seconds"] for info in markers.values()), 2),  # chunk work inside the workers
        "chunks": len(markers),
        "elapsed_s": round(timing["elapsed_s"], 2),
        "work_s": round(timing["work_s"], 2),  # chunks and shard cut; Ray and its workers already started
        "workers": timing["workers"],
    }
    run.finish(stats, scratch=(SPOOL_DIR,))
    return stats


def summary_table(stats: dict[str, Any], out: Path) -> str:
    lines = [f"curate build {stats['name']} -> {out}", f"  {'task':<20}{'samples':>9}  skipped (reason: count)"]
    for task, info in stats["tasks"].items():
        skips = ", ".join(f"{r}: {c}" for r, c in info["skipped"].items()) or "-"
        lines.append(f"  {task:<20}{info['samples']:>9}  {skips}")
    lines.append(f"  {stats['elapsed_s']:.1f} s")
    return "\n".join(lines)
