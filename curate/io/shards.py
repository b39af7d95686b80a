"""Kept samples as WebDataset shards (<key>.jpg + <key>.json), fixed samples per shard, byte-reproducible.

Shards are cut from the complete ledger in row order, so a rerun writes identical files; each is written under
a temp name and renamed, and shards already present are skipped.
"""

from __future__ import annotations

import json
import logging
import math
import tarfile
from pathlib import Path

import pyarrow.compute as pc

from curate.io.atomic import write_atomic
from curate.io.images import TarReader, read_image_bytes, to_jpeg
from curate.io.ledger import read_ledger
from curate.io.tar import add_member
from curate.schema import SAMPLE_FIELDS

log = logging.getLogger(__name__)
SHARD_DIR = "shards"


def shard_path(out: Path, index: int) -> Path:
    return out / SHARD_DIR / f"shard-{index:06d}.tar"


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
        path = shard_path(out, index)
        if path.exists():
            continue
        rows = kept.slice(index * samples_per_shard, samples_per_shard).to_pylist()
        write_atomic(path, lambda tmp, rows=rows: _write_tar(tmp, rows, tars))
        written += 1
    for stale in sorted((out / SHARD_DIR).glob("shard-*.tar"))[count:]:
        stale.unlink()  # left by a run whose ledger had more kept rows: never mix two runs' shards
    log.info(
        "shards: %d of %d written now (%d kept samples, %d per shard)",
        written,
        count,
        kept.num_rows,
        samples_per_shard,
    )
    return count


def _write_tar(tmp: Path, rows: list[dict], tars: TarReader) -> None:
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            image = to_jpeg(read_image_bytes(row["image_path"], row["image_member"], tars))
            meta = json.dumps(sample_json(row), ensure_ascii=False, sort_keys=True).encode()
            add_member(tar, f"{row['key']}.jpg", image)
            add_member(tar, f"{row['key']}.json", meta)
