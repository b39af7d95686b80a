"""Chunked work on Ray Data, resumable per chunk, and fixed-size shards cut from what the chunks wrote (issue 15).

`run_chunks` sends the chunks that have no done-marker to a pool of Ray actors (one per CPU by default). A worker
writes its own output (spool parts, index parts) and returns small counters; the driver writes the chunk's
marker with them and holds nothing else. A killed run redoes only the chunks without a marker.

`cut_shards` turns spool parts (one parquet per chunk, rows in order) into the final fixed-size shards: shard j
holds rows [j*S, (j+1)*S) of the concatenation in chunk order, so the numbering is known from the markers'
counts alone and every shard is cut by its own Ray task, reading only the row groups it needs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import TMP_SUFFIX
from curate.core.run_folder import RunFolder
from curate.core.shards import PARQUET_DIR, SHARD_DIR, shard_done, write_shard

log = logging.getLogger(__name__)
SPOOL_DIR = "_spool"
SPOOL_ROW_GROUP = 64  # rows per row group of a spool part: a cut reads whole row groups
PROGRESS_EVERY_S = 10.0


def cpu_slots() -> int:
    """Ray actors to start: one per CPU of the cluster (or the local instance)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_chunks(
    run: RunFolder, stage: str, specs: list[Any], worker: type, worker_kwargs: dict[str, Any], *,
    what: str, concurrency: int | None = None,
) -> dict[int, dict[str, Any]]:  # fmt: skip
    """Run every chunk of `stage` that has no marker on a pool of `worker` actors; returns all markers.

    Chunk i is described by `specs[i]` (JSON-able). `worker(**worker_kwargs)` is called with a batch
    {"chunk": [i], "spec": [json]} and returns {"chunk": [i], "info": [json]}, the chunk's counters as a JSON
    string. A chunk's outputs must be complete (written atomically) before it returns."""
    chunks = list(range(len(specs)))
    pending = run.pending(stage, chunks)
    if pending:
        import ray

        slots = concurrency or cpu_slots()
        log.info("%s: %d of %d chunks to do on %d Ray workers", what, len(pending), len(chunks), slots)
        items = [{"chunk": c, "spec": json.dumps(specs[c])} for c in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(pending))
        ds = ds.map_batches(
            worker,
            fn_constructor_kwargs=worker_kwargs,
            batch_size=1,
            concurrency=min(slots, len(pending)),
            num_cpus=1,
        )
        done, last = 0, time.time()
        for row in ds.iter_rows():
            run.mark_done(stage, int(row["chunk"]), json.loads(row["info"]))
            done += 1
            if time.time() - last >= PROGRESS_EVERY_S or done == len(pending):
                log.info("%s: %d/%d chunks done", what, done, len(pending))
                last = time.time()
    markers = run.markers(stage)
    missing = sorted(set(chunks) - set(markers))
    if missing:  # never a silent loss
        raise RuntimeError(f"{what}: chunks {missing[:10]} finished without a result")
    return markers


# ---------------------------------------------------------------------------------------------- spool -> shards


def spool_path(out: Path, stage: str, group: str, chunk: int) -> Path:
    return out / SPOOL_DIR / stage / group / f"chunk-{chunk:06d}.parquet"


class SpoolWriter:
    """One chunk's rows, per group (e.g. task), streamed into parquet row groups of SPOOL_ROW_GROUP rows; each
    group's part appears (renamed from a temp name) only on `close`, so memory is one row group per group."""

    def __init__(self, out: Path, stage: str, chunk: int, schema: pa.Schema) -> None:
        self.out, self.stage, self.chunk, self.schema = out, stage, chunk, schema
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.counts: dict[str, int] = {}

    def add(self, group: str, row: dict[str, Any]) -> None:
        buffer = self.buffers.setdefault(group, [])
        buffer.append(row)
        self.counts[group] = self.counts.get(group, 0) + 1
        if len(buffer) == SPOOL_ROW_GROUP:
            self._flush(group)

    def _flush(self, group: str) -> None:
        rows = self.buffers.pop(group, [])
        if not rows:
            return
        if group not in self.writers:
            tmp = self._tmp(group)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            self.writers[group] = pq.ParquetWriter(tmp, self.schema)
        self.writers[group].write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def _tmp(self, group: str) -> Path:
        path = spool_path(self.out, self.stage, group, self.chunk)
        return path.with_name(path.name + TMP_SUFFIX)

    def close(self) -> dict[str, int]:
        """Finish every group's part; returns the rows written per group."""
        for group in list(self.buffers):
            self._flush(group)
        for group, writer in self.writers.items():
            writer.close()
            os.replace(self._tmp(group), spool_path(self.out, self.stage, group, self.chunk))
        return dict(self.counts)


def read_rows(path: Path, start: int, stop: int) -> Iterator[dict[str, Any]]:
    """Rows [start, stop) of a parquet file, reading only the row groups that hold them."""
    parquet = pq.ParquetFile(path)
    first = 0
    for group in range(parquet.num_row_groups):
        n = parquet.metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(stop, first + n)
        if lo < hi:
            yield from parquet.read_row_group(group).slice(lo - first, hi - lo).to_pylist()
        first += n
        if first >= stop:
            return


def cut_plan(counts: list[tuple[str, int]], per_shard: int) -> list[list[tuple[str, int, int]]]:
    """Shards as lists of (spool part, start, stop), given (spool part, rows) in order."""
    shards: list[list[tuple[str, int, int]]] = []
    current: list[tuple[str, int, int]] = []
    room = per_shard
    for path, n in counts:
        start = 0
        while start < n:
            take = min(room, n - start)
            current.append((path, start, start + take))
            start += take
            room -= take
            if room == 0:
                shards.append(current)
                current, room = [], per_shard
    if current:
        shards.append(current)
    return shards


def cut_shards(
    targets: dict[Path, list[tuple[Path, int]]], per_shard: int, schema: pa.Schema, what: str
) -> dict[Path, int]:
    """Write every missing shard of each target folder from its spool parts ((part, rows) in order), all in one
    Ray Data job; returns the number of shards per folder."""
    plans = {folder: cut_plan([(str(p), n) for p, n in counts if n], per_shard) for folder, counts in targets.items()}
    items = [
        {"folder": str(folder), "index": i, "slices": json.dumps(plan[i])}
        for folder, plan in plans.items()
        for i in range(len(plan))
        if not shard_done(folder, i)
    ]
    if items:
        import ray

        log.info("%s: cutting %d of %d shards", what, len(items), sum(len(p) for p in plans.values()))
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(_cut, fn_kwargs={"schema": schema}, batch_size=1, num_cpus=1)
        for _ in ds.iter_rows():
            pass
    for folder, plan in plans.items():
        _remove_extra(folder, len(plan))
    return {folder: len(plan) for folder, plan in plans.items()}


def _cut(batch: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    index = int(batch["index"][0])
    rows = [row for path, start, stop in json.loads(batch["slices"][0]) for row in read_rows(Path(path), start, stop)]
    write_shard(Path(batch["folder"][0]), index, rows, schema)
    return {"index": [index], "rows": [len(rows)]}


def _remove_extra(folder: Path, count: int) -> None:
    """Shards numbered past `count` (left by an attempt that wrote more) must never mix into this output."""
    for sub, suffix in ((SHARD_DIR, ".tar"), (PARQUET_DIR, ".parquet")):
        for path in sorted((folder / sub).glob(f"*{suffix}"))[count:]:
            path.unlink()
