"""The one shard writer and the one shard reader of every curate output (issue 15).

A shard is a pair written side by side: `shards/shard-NNNNNN.tar` (WebDataset) and `parquet/part-NNNNNN.parquet`,
holding the same rows in the same order. A row is a dict of the output's Arrow schema; its binary columns become
tar members and the rest one JSON member:

- `image` (binary)             -> `<key>.jpg`
- `image_bytes` (list<binary>) -> `<key>.<i>.jpg` for every non-null item i (a packed sequence's samples)
- everything else              -> `<key>.json` (sorted keys, UTF-8)

Reading a tar gives back the same dict as reading the parquet row, so every consumer (validate, inspect, the
trainer, the sources, mix) sees one kind of record whatever file it came from. Writes are atomic (parquet first,
the tar last: the tar is the shard's done marker) and byte-reproducible (fixed tar metadata, sorted JSON).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import write_atomic
from curate.core.run_folder import read_run
from curate.core.storage import SCRATCH, exists, glob, open_read
from curate.core.tar import TarWriter

SHARD_DIR, PARQUET_DIR = "shards", "parquet"
ROW_GROUP = 64  # rows per parquet row group in every output: a part written in one go or cut from spool parts
# of any size is the same file, and a reader holds one row group (of images) at a time
IMAGE, IMAGES = "image", "image_bytes"  # the binary columns
Row = dict[str, Any]
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # json.dumps would build an encoder per row


def shard_path(folder: Path, index: int) -> Path:
    return folder / SHARD_DIR / f"shard-{index:06d}.tar"


def part_path(folder: Path, index: int) -> Path:
    return folder / PARQUET_DIR / f"part-{index:06d}.parquet"


def shard_done(folder: Path, index: int) -> bool:
    return exists(shard_path(folder, index)) and exists(part_path(folder, index))


def write_shard(folder: Path, index: int, rows: list[Row], schema: pa.Schema) -> None:
    """Shard `index` of `folder`: parquet part, then tar, each under a temp name and renamed."""
    write_part(part_path(folder, index), pa.Table.from_pylist(rows, schema=schema))
    write_atomic(shard_path(folder, index), lambda tmp: write_tar(tmp, rows))


def write_part(path: Path, table: pa.Table) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP))


def write_tar(path: Path, rows: list[Row]) -> None:
    with open(path, "wb") as f:
        tar = TarWriter(f)
        for row in rows:
            for name, data in row_members(row):
                tar.add(name, data)
        tar.close()


def row_members(row: Row) -> list[tuple[str, bytes]]:
    """The tar members of a row, in the order they are written."""
    key = row["key"]
    meta = {k: v for k, v in row.items() if k not in (IMAGE, IMAGES)}
    members = [(f"{key}.json", _JSON.encode(meta).encode())]
    if row.get(IMAGE) is not None:
        members.insert(0, (f"{key}.jpg", row[IMAGE]))
    for i, data in enumerate(row.get(IMAGES) or []):
        if data is not None:
            members.append((f"{key}.{i}.jpg", data))
    return members


def members_row(key: str, members: dict[str, bytes]) -> Row:
    """The row of one tar sample: `members` maps the part after `<key>.` (json, jpg, 0.jpg, ...) to bytes."""
    row = json.loads(members["json"])
    if "sample_keys" in row:  # a packed sequence: image i of sample i
        row[IMAGES] = [members.get(f"{i}.jpg") for i in range(len(row["sample_keys"]))]
    elif "prefix" in row or IMAGE in members or "jpg" in members:
        row[IMAGE] = members.get("jpg")
    row.setdefault("key", key)
    return row


# ---------------------------------------------------------------------------------------------- reading


OnError = Callable[[Path, Exception], None]


def _raise(path: Path, err: Exception) -> None:
    raise err


def read_tar(path: Path, on_error: OnError = _raise) -> Iterator[Row]:
    """Rows of one tar shard, streamed (members of a sample are adjacent, WebDataset's rule). A read error
    (truncated or corrupt tar) goes to `on_error` after the rows read so far; the default raises."""
    key, members = None, {}
    try:
        with open_read(path) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                base = info.name.rsplit("/", 1)[-1]
                sample, _, suffix = base.partition(".")
                if sample != key:
                    if key is not None and "json" in members:
                        yield members_row(key, members)
                    key, members = sample, {}
                members[suffix] = tar.extractfile(info).read()  # type: ignore[union-attr]
        if key is not None and "json" in members:
            yield members_row(key, members)
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as err:
        on_error(path, err)


def read_tar_index(path: Path) -> Iterator[tuple[Row, dict[str, tuple[int, int]]]]:
    """(JSON row, {suffix: (offset, size)} of its binary members) per sample of a tar, reading only the JSON
    members: where each image lies, for readers that fetch bytes later with one seek (`storage.read_at`)."""
    key, meta, where = None, None, {}
    with open_read(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
        while (info := tar.next()) is not None:
            tar.members.clear()  # keep no TarInfo: memory stays flat on any shard size
            if not info.isfile():
                continue
            sample, _, suffix = info.name.rsplit("/", 1)[-1].partition(".")
            if sample != key:
                if meta is not None:
                    yield meta, where
                key, meta, where = sample, None, {}
            if suffix == "json":
                meta = json.loads(tar.extractfile(info).read())  # type: ignore[union-attr]
            else:
                where[suffix] = (info.offset_data, info.size)
    if meta is not None:
        yield meta, where


def read_parquet(path: Path, columns: list[str] | None = None) -> Iterator[Row]:
    """Rows of one parquet part, one row group at a time (memory is bounded by a row group, not the file)."""
    with open_read(path) as f:
        parquet = pq.ParquetFile(f)
        for group in range(parquet.num_row_groups):
            yield from parquet.read_row_group(group, columns=columns).to_pylist()


def read_file(path: Path, on_error: OnError = _raise) -> Iterator[Row]:
    if path.suffix == ".tar":
        yield from read_tar(path, on_error)
    elif path.suffix == ".parquet":
        yield from read_parquet(path)
    else:
        raise ValueError(f"{path}: expected a .tar shard or a .parquet part")


def output_files(path: Path, kind: str = "tar") -> list[Path]:
    """The .tar shards (kind "tar") or parquet parts (kind "parquet") of any curate output: a file, a folder of
    shards, a command's output folder (its run.json says which), or any folder holding such files."""
    suffix = ".tar" if kind == "tar" else ".parquet"
    if path.is_file() or (path.suffix == suffix and exists(path)):
        return [path] if path.suffix == suffix else []
    sub = SHARD_DIR if kind == "tar" else PARQUET_DIR
    run = read_run(path)
    if run is not None and run.get("command") in ("build", "ocr"):
        return glob(path, f"*/{sub}/*{suffix}")
    if run is not None and run.get("command") in ("filter", "mix"):
        return glob(path, f"{sub}/*{suffix}")
    return [p for p in glob(path, f"**/*{suffix}") if not SCRATCH.intersection(p.relative_to(path).parts)]


def read_output(path: Path, kind: str = "tar", on_error: OnError = _raise) -> Iterator[Row]:
    """Every row of any curate output (see `output_files`), file by file in name order."""
    for file in output_files(path, kind):
        yield from read_file(file, on_error)
