"""Kept samples of a filter run as shards (curate.core.shards): `<key>.jpg` + `<key>.json` in the tar, the same
fields plus `image` in the parquet part beside it. Fixed samples per shard, byte-reproducible.

Shards are cut from the complete ledger in row order, so a rerun writes identical files; shards already present
are skipped.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curate.core.images import TarReader, read_image_bytes, to_jpeg
from curate.core.schema import LEDGER_SCHEMA, SAMPLE_FIELDS
from curate.core.shards import shard_done, write_shard
from curate.ledger.parts import read_ledger

log = logging.getLogger(__name__)
SHARD_SCHEMA = pa.schema([LEDGER_SCHEMA.field(name) for name in SAMPLE_FIELDS] + [pa.field("image", pa.binary())])


def sample_json(row: dict) -> dict:
    """The <key>.json member: caption and scores of a kept row (schemas/shard_sample.schema.json)."""
    return {name: row.get(name) for name in SAMPLE_FIELDS}


def write_shards(out: Path, samples_per_shard: int) -> int:
    """Write every missing shard of the kept rows; returns the number of shards."""
    ledger = read_ledger(out)
    kept = ledger.filter(pc.is_null(ledger.column("reject_reason"))).sort_by("row_id")
    count = math.ceil(kept.num_rows / samples_per_shard)
    tars = TarReader()
    written = 0
    for index in range(count):
        if shard_done(out, index):
            continue
        rows = [
            {**sample_json(row), "image": to_jpeg(read_image_bytes(row["image_path"], row["image_member"], tars))}
            for row in kept.slice(index * samples_per_shard, samples_per_shard).to_pylist()
        ]
        write_shard(out, index, rows, SHARD_SCHEMA)
        written += 1
    for sub, pattern in (("shards", "shard-*.tar"), ("parquet", "part-*.parquet")):
        for stale in sorted((out / sub).glob(pattern))[count:]:
            stale.unlink()  # left by a run whose ledger had more kept rows: never mix two runs' shards
    log.info(
        "shards: %d of %d written now (%d kept samples, %d per shard)",
        written,
        count,
        kept.num_rows,
        samples_per_shard,
    )
    return count
