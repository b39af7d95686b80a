"""The ledger: one Parquet part per chunk, one row per input row, written atomically (the part is the chunk's
done marker)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic
from curate.core.schema import LEDGER_SCHEMA, SCHEMA_VERSION

LEDGER_DIR = "ledger"


def part_path(out: Path, chunk: int) -> Path:
    return out / LEDGER_DIR / f"part-{chunk:06d}.parquet"


def to_ledger(table: pa.Table) -> pa.Table:
    """Select and cast to the ledger schema (blocks from pandas stages carry looser types), sorted by row_id."""
    n = table.num_rows
    columns = []
    for field in LEDGER_SCHEMA:
        if field.name == "schema_version":
            columns.append(pa.array([SCHEMA_VERSION] * n, field.type))
        elif field.name not in table.column_names or table.column(field.name).type == pa.null():
            columns.append(pa.nulls(n, field.type))
        else:
            columns.append(pc.cast(table.column(field.name), field.type))
    ledger = pa.Table.from_arrays(columns, schema=LEDGER_SCHEMA)
    return ledger.sort_by("row_id")


def write_part(out: Path, chunk: int, table: pa.Table) -> None:
    write_parquet_atomic(part_path(out, chunk), to_ledger(table))


def read_ledger(out: Path, columns: list[str] | None = None) -> pa.Table:
    parts = sorted((out / LEDGER_DIR).glob("part-*.parquet"))
    if not parts:
        return LEDGER_SCHEMA.empty_table() if columns is None else LEDGER_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(pq.read_table(p, columns=columns, schema=LEDGER_SCHEMA) for p in parts)
