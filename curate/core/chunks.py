"""Chunked work on a pool of Ray actors, resumable per chunk, and fixed-size shards cut from what the chunks wrote
(issue 15).

`WorkerPool` starts one actor per CPU of the Ray cluster (or the local instance), each holding one worker object
(a builder, a renderer, a writer) for the whole run. `run_chunks` sends it the chunks that have no done-marker;
a worker writes its own output and returns small counters, and the driver writes the chunk's marker with them
and holds nothing else. A killed run redoes only the chunks without a marker.

Chunk outputs that become task shards are spool parts in the final shard format (`ChunkWriter`: a tar, its
parquet part, and the byte offset of every sample in the tar). `cut_shards` then writes the final fixed-size
shards on the same actors: shard j holds rows [j*S, (j+1)*S) of the concatenation in chunk order, known from the
markers' counts alone; its tar is copied byte range by byte range from the spool tars and its parquet part is
the matching Arrow slices, so the cut never decodes a sample.

The pool uses Ray core actors rather than Ray Data: a Ray Data dataset starts its own stats, autoscaling and
location actors and new task workers for each stage, which cost a 2-core machine about a third of its CPU on a
build (measured; README "Benchmarks"), and would not let the cut reuse the warm actors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import TMP_SUFFIX, write_atomic
from curate.core.log import progress
from curate.core.run_folder import RunFolder
from curate.core.shards import (
    PARQUET_DIR,
    ROW_GROUP,
    SHARD_DIR,
    part_path,
    row_members,
    shard_done,
    shard_path,
    write_part,
)
from curate.core.storage import exists, move, open_read, publish
from curate.core.tar import TarWriter

log = logging.getLogger(__name__)
SPOOL_DIR = "_spool"
IN_FLIGHT = 2  # items queued per actor


def cpu_slots() -> int:
    """Actors to start: one per CPU of the Ray cluster (or the local instance)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class ChunkActor:
    """The body of every pool actor: one worker object, and the shard cut."""

    def __init__(self, worker: type, kwargs: dict[str, Any]) -> None:
        self.worker = worker(**kwargs)

    def ready(self) -> bool:
        return True

    def run(self, item: dict[str, Any]) -> dict[str, Any]:
        return self.worker(item)

    def cut(self, item: dict[str, Any]) -> dict[str, Any]:
        return cut_one(item)


class WorkerPool:
    """`size` Ray actors (1 CPU each) holding `worker(**kwargs)`; `map` runs items as actors come free."""

    def __init__(self, worker: type, kwargs: dict[str, Any], size: int | None = None) -> None:
        import ray

        self.size = size or cpu_slots()
        remote = ray.remote(num_cpus=1, max_restarts=0)(ChunkActor)
        self.actors = [remote.remote(worker, kwargs) for _ in range(self.size)]
        ray.get([actor.ready.remote() for actor in self.actors])  # started: imports done, worker object built

    def map(self, method: str, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Results of `actor.method(item)` for every item, in completion order. Each actor has two items in
        flight, so it starts the next as soon as one ends, not after the driver has handled the result."""
        import ray

        todo = iter(items)
        running: dict[Any, Any] = {}

        def submit(actor: Any) -> None:
            item = next(todo, None)
            if item is not None:
                running[getattr(actor, method).remote(item)] = actor

        for _ in range(IN_FLIGHT):
            for actor in self.actors:
                submit(actor)
        while running:
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(done)
            submit(actor)
            yield ray.get(done)  # a worker's exception is raised here, and fails the run (a rerun resumes)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)


def run_chunks(run: RunFolder, stage: str, specs: list[Any], pool: WorkerPool, what: str) -> dict[int, dict]:
    """Run every chunk of `stage` that has no marker on the pool; returns all markers.

    Chunk i is described by `specs[i]` (JSON-able); the pool's worker is called with {"chunk": i, "spec": spec}
    and returns {"chunk": i, "info": counters}. A chunk's outputs must be complete (written atomically) before it
    returns."""
    pending = run.pending(stage, range(len(specs)))
    if pending:
        log.info("%s: %d of %d chunks to do on %d Ray workers", what, len(pending), len(specs), pool.size)
        with progress(len(pending), what, unit="chunks") as bar:
            for result in pool.map("run", ({"chunk": c, "spec": specs[c]} for c in pending)):
                run.mark_done(stage, int(result["chunk"]), result["info"])
                bar.update(1)
    markers = run.markers(stage)
    missing = sorted(set(range(len(specs))) - set(markers))
    if missing:  # never a silent loss
        raise RuntimeError(f"{what}: chunks {missing[:10]} finished without a result")
    return markers


# ---------------------------------------------------------------------------------------------- spool -> shards


def spool_path(out: Path, stage: str, group: str, chunk: int) -> Path:
    """The spool parquet part of one chunk and group; the tar and offsets sit beside it."""
    return out / SPOOL_DIR / stage / group / f"chunk-{chunk:06d}.parquet"


def _siblings(parquet: Path) -> tuple[Path, Path]:
    return parquet.with_suffix(".tar"), parquet.with_suffix(".offsets")


class ChunkWriter:
    """One chunk's rows per group (e.g. task), written as they come in the final shard format: a tar (members as
    `curate.core.shards.row_members` gives them), a parquet part in row groups of ROW_GROUP rows, and the
    tar offset where each row starts (plus the end). Each group's files appear (renamed) only on `close`, so
    memory is one row group per group and a killed worker leaves only temp files."""

    def __init__(self, out: Path, stage: str, chunk: int, schema: pa.Schema) -> None:
        self.out, self.stage, self.chunk, self.schema = out, stage, chunk, schema
        self.groups: dict[str, dict[str, Any]] = {}

    @staticmethod
    def warm(schema: pa.Schema) -> None:
        """Load what the first row group would load (a worker calls this at start-up): a process's first
        Python -> Arrow conversion imports pandas (pyarrow checks for pandas objects), which would otherwise
        make a worker's first chunk the slowest."""
        pa.Table.from_pylist([], schema=schema)

    def add(self, group: str, row: dict[str, Any]) -> None:
        g = self.groups.get(group) or self._open(group)
        g["rows"].append(row)
        if len(g["rows"]) == ROW_GROUP:
            self._flush(g)

    def _open(self, group: str) -> dict[str, Any]:
        final = spool_path(self.out, self.stage, group, self.chunk)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = {f: f.with_name(f.name + TMP_SUFFIX) for f in (final, *_siblings(final))}
        tar_file = open(tmp[_siblings(final)[0]], "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        g = {"final": final, "tmp": tmp, "file": tar_file, "tar": TarWriter(tar_file), "offsets": [], "rows": []}
        g["parquet"] = pq.ParquetWriter(tmp[final], self.schema)
        self.groups[group] = g
        return g

    def _flush(self, g: dict[str, Any]) -> None:
        """A row group's tar members and parquet rows, written together: interleaved with the builders' image
        encoding, per row, the same writes cost about a third more (README "Benchmarks", P6)."""
        if g["rows"]:
            tar = g["tar"]
            for row in g["rows"]:
                g["offsets"].append(tar.offset)
                for name, data in row_members(row):
                    tar.add(name, data)
            g["parquet"].write_table(pa.Table.from_pylist(g["rows"], schema=self.schema))
            g["rows"] = []

    def close(self) -> dict[str, int]:
        """Finish every group's files; returns the rows written per group."""
        counts = {}
        for group, g in self.groups.items():
            self._flush(g)
            g["parquet"].close()
            g["offsets"].append(g["tar"].offset)
            g["tar"].close()
            g["file"].close()
            tar, offsets = _siblings(g["final"])
            g["tmp"][offsets].write_bytes(np.asarray(g["offsets"], dtype="<i8").tobytes())
            for path in (offsets, tar, g["final"]):  # the parquet part last: it is what a cut looks for
                os.replace(g["tmp"][path], path)
                publish(path)
            counts[group] = len(g["offsets"]) - 1
        return counts


def read_rows(path: Path, start: int, stop: int) -> Iterator[dict[str, Any]]:
    """Rows [start, stop) of a parquet file as dicts, reading only the row groups that hold them."""
    table = read_slice(path, start, stop)
    yield from table.to_pylist()


def read_slice(path: Path, start: int, stop: int) -> pa.Table:
    """Rows [start, stop) of a parquet file as a table, reading only the row groups that hold them."""
    with open_read(path) as f:
        return _slice(pq.ParquetFile(f), start, stop)


def _slice(parquet: pq.ParquetFile, start: int, stop: int) -> pa.Table:
    pieces, first = [], 0
    for group in range(parquet.num_row_groups):
        n = parquet.metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(stop, first + n)
        if lo < hi:
            pieces.append(parquet.read_row_group(group).slice(lo - first, hi - lo))
        first += n
        if first >= stop:
            break
    return pa.concat_tables(pieces) if pieces else parquet.schema_arrow.empty_table()


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
    pool: WorkerPool, targets: dict[Path, list[tuple[Path, int]]], per_shard: int, schema: pa.Schema, what: str
) -> dict[Path, int]:
    """Write every missing shard of each target folder from its spool parts ((part, rows) in order), on the
    pool's actors; returns the number of shards per folder."""
    plans = {folder: cut_plan([(str(p), n) for p, n in counts if n], per_shard) for folder, counts in targets.items()}
    items = [
        {"folder": str(folder), "index": i, "slices": plan[i], "schema": schema}
        for folder, plan in plans.items()
        for i in range(len(plan))
        if not shard_done(folder, i)
    ]
    if items:
        log.info("%s: cutting %d of %d shards", what, len(items), sum(len(p) for p in plans.values()))
        with progress(len(items), what, unit="shards") as bar:
            for _ in pool.map("cut", items):
                bar.update(1)
    for folder, plan in plans.items():
        _remove_extra(folder, len(plan))
    return {folder: len(plan) for folder, plan in plans.items()}


def cut_one(item: dict[str, Any]) -> dict[str, Any]:
    """One final shard: a whole spool part is renamed; anything else gets its parquet part from Arrow slices
    and its tar from byte ranges of the spool tars (the same bytes either way)."""
    folder, index, slices = Path(item["folder"]), int(item["index"]), item["slices"]
    if len(slices) == 1 and slices[0][1] == 0 and slices[0][2] == _rows(Path(slices[0][0])):
        return _rename(Path(slices[0][0]), folder, index, slices[0][2])
    table = pa.concat_tables([read_slice(Path(p), start, stop) for p, start, stop in slices])
    write_part(part_path(folder, index), table.cast(item["schema"]))  # parquet reads lists back as "element"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            tar = TarWriter(out)
            for path, start, stop in slices:
                source, offsets = _siblings(Path(path))
                with open_read(offsets) as f:
                    where = np.frombuffer(f.read(), dtype="<i8")
                with open_read(source) as f:
                    f.seek(int(where[start]))
                    tar.add_raw(f.read(int(where[stop] - where[start])))
            tar.close()

    write_atomic(shard_path(folder, index), write)
    return {"index": index, "rows": table.num_rows}


def _rename(part: Path, folder: Path, index: int, rows: int) -> dict[str, Any]:
    """Shard `index` is exactly spool part `part`: move its tar, then its parquet (a rerun after a kill between
    the two finds the tar already moved: the plan is deterministic, so it is the same file)."""
    for source, target in ((_siblings(part)[0], shard_path(folder, index)), (part, part_path(folder, index))):
        target.parent.mkdir(parents=True, exist_ok=True)
        if exists(source):
            move(source, target)
        elif not exists(target):
            raise RuntimeError(f"spool file {source} is missing and shard {target} was never written")
    return {"index": index, "rows": rows}


def _rows(part: Path) -> int:
    with open_read(part) as f:
        return pq.ParquetFile(f).metadata.num_rows


def _remove_extra(folder: Path, count: int) -> None:
    """Shards numbered past `count` (left by an attempt that wrote more) must never mix into this output."""
    for sub, suffix in ((SHARD_DIR, ".tar"), (PARQUET_DIR, ".parquet")):
        for path in sorted((folder / sub).glob(f"*{suffix}"))[count:]:
            path.unlink()
