"""`curate build`: sources -> task builders -> per-task WebDataset shards + Parquet parts + stats, on Ray.

Each source says how its records split into chunks (`Source.chunks`); a pool of Ray workers builds chunk after
chunk (curate.tasks.build), decoding and re-encoding images there, and writes the chunk's samples per task into
spool parts. The driver holds only the chunk markers (counters). When every chunk is done, the spool is cut into
fixed-size shards per task, in chunk order, so the output is the same however the chunks were scheduled, and a
killed build resumes from its markers (issue 15).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from typing import Any

from curate.commands.build.config import BuildConfig
from curate.core.chunks import SPOOL_DIR, WorkerPool, run_chunks
from curate.core.config import fingerprint, to_dict, to_yaml
from curate.core.ray_session import ray_session
from curate.core.run_folder import RunFolder, open_run, paths_digest
from curate.core.schema import SCHEMA_VERSION
from curate.dedup.reference import ReferenceScreen
from curate.dedup.run import DEDUP_DIR
from curate.tasks.build import STAGE, BuildWorker, chunk_specs
from curate.tasks.output import write_task_shards

log = logging.getLogger(__name__)


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
        for source in cfg.sources:
            source.preflight()  # missing fonts and the like fail here, before Ray starts
        specs = chunk_specs(cfg.sources, cfg.records_per_chunk)
        log.info("build %s: %d sources in %d chunks", cfg.name, len(cfg.sources), len(specs))
        out = cfg.out_dir.resolve()
        screen = ReferenceScreen(cfg.decontaminate, out / DEDUP_DIR / "reference") if cfg.decontaminate else None
        with ray_session(cfg.ray.address, cfg.ray.num_cpus):
            pool = WorkerPool(BuildWorker, {"sources": cfg.sources, "out": str(out), "screen": screen})
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
    tags: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for info in markers.values():
        for key, values in info.get("tags", {}).items():
            tags[info["source"]][key].update(values)
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
        "tags": {s: {k: dict(sorted(v.items())) for k, v in t.items()} for s, t in sorted(tags.items())},
        "records": sum(info["records"] for info in markers.values()),
        "worker_s": round(sum(info["seconds"] for info in markers.values()), 2),  # chunk work inside the workers
        "chunks": len(markers),
        "elapsed_s": round(timing["elapsed_s"], 2),
        "work_s": round(timing["work_s"], 2),  # chunks and shard cut; Ray and its workers already started
        "workers": timing["workers"],
    }
    run.finish(stats, scratch=(SPOOL_DIR,))
    return stats
