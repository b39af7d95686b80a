"""Per-row vectors of a filter run kept beside the ledger, one Parquet part per chunk: the CLIP image embeddings
(clip_score.save_embeddings) and the crop-window pHashes (dedup_near.crop_windows).

`<out>/embeddings/part-<chunk>.parquet`: key, row_id, embedding (fixed-size list of float16, unit length).
`<out>/dedup/windows/part-<chunk>.parquet`: key, row_id, windows (fixed-size list of int64 hashes).
One row per row the stage computed it for. Written before the chunk's ledger part (the chunk's done marker), so
a finished chunk always has them. Readable by any Parquet reader (clip-retrieval style for the embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic


@dataclass(frozen=True)
class SideTable:
    column: str  # the stage's output column: the vector as raw bytes (a plain binary column through Ray's blocks)
    folder: str
    field: str
    dtype: type
    arrow_type: pa.DataType


EMBEDDINGS = SideTable("clip_embedding", "embeddings", "embedding", np.float16, pa.float16())
WINDOWS = SideTable("phash_windows", "dedup/windows", "windows", np.int64, pa.int64())
SIDE_TABLES = (EMBEDDINGS, WINDOWS)
EMBEDDINGS_DIR = EMBEDDINGS.folder


def part_path(out: Path, chunk: int, side: SideTable = EMBEDDINGS) -> Path:
    return out / side.folder / f"part-{chunk:06d}.parquet"


def part_paths(out: Path, side: SideTable = EMBEDDINGS) -> list[Path]:
    return sorted((out / side.folder).glob("part-*.parquet"))


def write_parts(out: Path, chunk: int, table: pa.Table) -> None:
    """Every side table whose column the chunk's stage output carries."""
    for side in SIDE_TABLES:
        if side.column in table.column_names:
            write_part(out, chunk, table, side)


def write_part(out: Path, chunk: int, table: pa.Table, side: SideTable = EMBEDDINGS) -> None:
    """The rows of `table` (a chunk's stage output) that carry the vector, sorted by row_id."""
    # A block whose rows all lack the vector reaches here as nulls of another type (NaN floats): bytes only.
    present = [isinstance(b, bytes) for b in table.column(side.column).to_pylist()]
    table = table.filter(pa.array(present, pa.bool_())).sort_by("row_id")
    blobs = table.column(side.column).to_pylist()
    width = np.dtype(side.dtype).itemsize
    dims = {len(b) // width for b in blobs}
    if len(dims) > 1:
        raise RuntimeError(f"{side.field} of different sizes in chunk {chunk}: {sorted(dims)}")
    dim = dims.pop() if dims else 1
    flat = np.frombuffer(b"".join(blobs), dtype=side.dtype)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, side.arrow_type), dim)
    schema = pa.schema([("key", pa.string()), ("row_id", pa.int64()), (side.field, pa.list_(side.arrow_type, dim))])
    columns = [pc.cast(table.column("key"), pa.string()), pc.cast(table.column("row_id"), pa.int64()), vectors]
    write_parquet_atomic(part_path(out, chunk, side), pa.Table.from_arrays(columns, schema=schema))


def read_part(
    path: Path, row_ids: np.ndarray | None = None, side: SideTable = EMBEDDINGS
) -> tuple[np.ndarray, np.ndarray]:
    """(row_ids, matrix) of one part, restricted to `row_ids` when given; embeddings come as float32."""
    table = pq.read_table(path, columns=["row_id", side.field])
    ids = table.column("row_id").to_numpy()
    if row_ids is not None:
        keep = np.isin(ids, row_ids)
        table, ids = table.filter(pa.array(keep)), ids[keep]
    column = table.column(side.field).combine_chunks()
    dim = column.type.list_size
    flat = column.values.to_numpy(zero_copy_only=False) if len(column) else np.empty(0, side.dtype)
    matrix = flat.reshape(len(ids), dim)
    return ids, matrix.astype(np.float32) if side.dtype == np.float16 else matrix
