"""`curate filter`: ingest -> Ray Data filter stages -> ledger parts -> shards -> stats.

Work is cut into chunks of input rows; a chunk is done when its ledger part exists, so a killed run resumes
where it stopped. Shards are cut from the complete ledger only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.commands.filter.config import FilterRunConfig
from curate.core.atomic import write_parquet_atomic
from curate.core.config import fingerprint, to_dict, to_yaml
from curate.core.errors import ConfigError, FilterBugError, exception_chain
from curate.core.log import progress
from curate.core.ray_session import cluster_address, ray_session
from curate.core.run_folder import RunFolder, file_digest, open_run
from curate.dedup.run import decisions_path, run_global
from curate.download import stage as download
from curate.download.http_server import serve_directory
from curate.filters import reason_stages
from curate.filters.base import Filter
from curate.filters.plan import build_dataset
from curate.ledger import embeddings, stats
from curate.ledger import parts as ledger
from curate.ledger.inputs import INPUT_SCHEMA, chunk_rows, input_fingerprint, read_input
from curate.ledger.kept_shards import write_shards
from curate.ledger.local_images import raw_local_table

log = logging.getLogger(__name__)


def run_filter(cfg: FilterRunConfig, overwrite: bool = False) -> dict:
    """Run (or resume) a filter run; returns its stats."""
    started = time.time()
    out = cfg.out_dir
    active, skipped = _active_filters(cfg.filters)
    for f in active:
        f.preflight()  # missing weights etc. fail here, before Ray, downloads or the output dir
    identity = {"config": fingerprint(cfg), "input": input_fingerprint(cfg.input), "models": models_digest(cfg)}
    with open_run(out, "filter", identity, to_dict(cfg), to_yaml(cfg), overwrite=overwrite) as run:
        return _run_locked(cfg, run, active, skipped, started)


def models_digest(cfg: FilterRunConfig) -> str:
    """Hash of the model files the filters load: retrained weights make a different run."""
    digest = hashlib.sha256()
    for f in cfg.filters:
        for path in f.artifacts():
            digest.update(f"{f.name}:{Path(path).name}".encode())
            if Path(path).is_file():
                digest.update(file_digest(Path(path)))
    return digest.hexdigest()[:16]


def _run_locked(cfg: FilterRunConfig, run: RunFolder, active: list[Filter], skipped: dict, started: float) -> dict:
    out = cfg.out_dir
    resumed = run.resumed
    rows = _load_input(cfg, out)
    num_chunks = max(1, math.ceil(rows.num_rows / cfg.input.rows_per_chunk))
    pending = [c for c in range(num_chunks) if not ledger.part_path(out, c).exists()]
    log.info(
        "%d input rows in %d chunks; %d chunks to process%s",
        rows.num_rows,
        num_chunks,
        len(pending),
        " (resumed)" if resumed else "",
    )
    processed = pc.sum(pc.is_in(rows.column("chunk"), pa.array(pending, pa.int32()))).as_py() or 0
    if pending:
        # A named cluster is joined before downloading, so a wrong address or token fails in seconds rather than
        # after the download; the local instance starts after it, so its memory is not held while downloading.
        with ray_session(cfg.ray.address, None) if cluster_address(cfg.ray.address) else nullcontext():
            raw = _raw_tables(cfg, rows, pending, num_chunks, out)
            with ray_session(cfg.ray.address, cfg.ray.num_cpus):
                local = cfg.input.coco_captions is not None
                _run_stages(raw, active, out, local=local, batch_rows=cfg.ray.batch_rows)
                _run_global_stages(cfg, active, out)
    _run_global_stages(cfg, active, out)  # resumed after the chunks were done, or already decided: applies
    write_shards(out, cfg.output.samples_per_shard)
    elapsed = time.time() - started
    result = stats.compute(
        ledger.read_ledger(out),
        cfg.name,
        [f.name for f in cfg.filters],
        skipped,
        {
            "rows_processed": processed,
            "elapsed_s": round(elapsed, 2),
            "rows_per_s": round(processed / elapsed, 2) if elapsed > 0 else 0.0,
            "resumed": resumed,
        },
        reason_stages=reason_stages(cfg.filters),
    )
    stats.write(out, result)
    run.mark_complete()
    return result


def _run_global_stages(cfg: FilterRunConfig, active: list[Filter], out: Path) -> None:
    """The dedup stages' global decisions (curate.dedup.run); Ray is started only when they are still to make."""
    stages = [f for f in active if getattr(f, "global_stage", False)]
    if not stages:
        return
    import ray

    decided = decisions_path(out).exists()
    with ray_session(cfg.ray.address, cfg.ray.num_cpus) if not (decided or ray.is_initialized()) else nullcontext():
        run_global(out, stages, next((f for f in active if f.name == "clip_score"), None))


def _active_filters(filters: tuple[Filter, ...]) -> tuple[list[Filter], dict[str, str]]:
    active = [f for f in filters if not f.skip]
    skipped = {f.name: "skip: true in the config" for f in filters if f.skip}
    return active, skipped


def _load_input(cfg: FilterRunConfig, out: Path) -> pa.Table:
    """The normalized input, written once so chunks and keys are fixed for the life of the run."""
    path = out / "input.parquet"
    if path.exists():
        return pq.read_table(path, schema=INPUT_SCHEMA)
    rows = read_input(cfg.input)
    if rows.num_rows == 0:
        raise ConfigError("the input has no rows")
    write_parquet_atomic(path, rows)
    return rows


def _raw_tables(cfg: FilterRunConfig, rows: pa.Table, pending: list[int], num_chunks: int, out: Path) -> list:
    if cfg.input.coco_captions is not None:
        return [raw_local_table(chunk_rows(rows, c)) for c in pending]
    raw_dir = out / "raw"
    if download.missing_chunks(raw_dir, pending, num_chunks):
        serve = cfg.input.url_list.serve_dir if cfg.input.url_list else None
        with serve_directory(serve) if serve else nullcontext(None) as base_url:
            if base_url:
                log.info("serving %s at %s for this run", serve, base_url)
            per_chunk = cfg.input.rows_per_chunk
            download.download(rows, raw_dir, cfg.download, per_chunk, base_url, ray_address=cfg.ray.address)
    return [download.raw_chunk_table(chunk_rows(rows, c), raw_dir, c, num_chunks) for c in pending]


def _run_stages(raw: list[pa.Table], filters: list[Filter], out: Path, local: bool, batch_rows: int) -> None:
    """Stream results to the driver and write each chunk's ledger part as soon as all its rows arrived."""
    expected = {int(t.column("chunk")[0].as_py()): t.num_rows for t in raw if t.num_rows}
    try:
        _collect(build_dataset(raw, filters, local, batch_rows), expected, out)
    except FilterBugError:
        raise
    except Exception as err:  # Ray Data wraps a filter's bug in its own errors: give back the filter's message
        bug = _filter_bug(err)
        if bug is None:
            raise
        raise FilterBugError(bug) from err


def _filter_bug(err: BaseException) -> str | None:
    """The FilterBugError message inside Ray's wrapping (cause chain, else its text), or None."""
    for e in exception_chain(err):
        if type(e) is FilterBugError:
            return str(e)
    found = re.search(r"FilterBugError: (filter .*?)\n", str(err) + "\n")
    return found.group(1) if found else None


def _collect(ds, expected: dict[int, int], out: Path) -> None:  # noqa: ANN001 - ray.data.Dataset
    buffers: dict[int, list[pa.Table]] = defaultdict(list)
    received: dict[int, int] = defaultdict(int)
    with progress(sum(expected.values()), "filter") as bar:
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            _receive(batch, expected, buffers, received, out)
            bar.update(batch.num_rows)
    unfinished = {c: (received[c], n) for c, n in expected.items() if received[c] != n}
    if unfinished:  # never a silent drop: a lost row is a bug
        raise RuntimeError(f"rows lost in the pipeline (chunk: (received, expected)): {unfinished}")


def _receive(batch: pa.Table, expected: dict, buffers: dict, received: dict, out: Path) -> None:
    """File a batch of results under their chunks; write each chunk whose rows have all arrived."""
    for chunk in pc.unique(batch.column("chunk")).to_pylist():
        part = batch.filter(pc.equal(batch.column("chunk"), chunk))
        buffers[chunk].append(part)
        received[chunk] += part.num_rows
        if received[chunk] == expected[chunk]:
            table = pa.concat_tables(buffers.pop(chunk), promote_options="permissive")
            embeddings.write_parts(out, chunk, table)  # before the ledger part, the chunk's done marker
            ledger.write_part(out, chunk, table)
            log.debug("chunk %d done (%d rows)", chunk, expected[chunk])
