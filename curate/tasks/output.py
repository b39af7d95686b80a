"""Task samples as shard rows: the Arrow schema of `curate build` / `curate ocr` outputs, the checked conversion
of an Example into a row, and the cut of a run's spool parts into `<task>/shards` + `<task>/parquet`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.core.chunks import WorkerPool, cut_shards, spool_path
from curate.format.validate import check_sample
from curate.tasks.base import Example

SAMPLE_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("task", pa.string()),
        ("source", pa.string()),
        ("key", pa.string()),
        ("images", pa.list_(pa.string())),
        ("prefix", pa.string()),
        ("target", pa.string()),
        # [width, height] of each image in `images` order, as stored (build keeps the original size): what an
        # image plan counts tokens from (issue 18); empty when unknown (a URL-only sample without a size)
        ("image_sizes", pa.list_(pa.list_(pa.int32()))),
        ("image", pa.binary()),  # JPEG bytes of images[0] (null for text-only or URL-only samples)
    ]
)


def sample_row(example: Example, image: bytes | None, sizes: list[list[int]] | None = None) -> dict[str, Any]:
    """The shard row of an Example. Builders must only produce valid samples: a failure is a bug, not bad data."""
    sample = example.to_json()
    errors = check_sample(sample)
    if errors:
        raise RuntimeError(f"builder {example.task} produced an invalid sample {example.key}: {errors}")
    images = bool(example.images)
    return {**sample, "image_sizes": (sizes or []) if images else [], "image": image if images else None}


def write_task_shards(
    pool: WorkerPool, out: Path, stage: str, markers: dict[int, dict[str, Any]], per_shard: int
) -> dict[str, int]:
    """Cut every task's spool parts (chunk order) into fixed-size shards under out/<task>; shards per task."""
    tasks = sorted({t for info in markers.values() for t in info["samples"]})
    targets = {
        out / task: [(spool_path(out, stage, task, c), markers[c]["samples"].get(task, 0)) for c in sorted(markers)]
        for task in tasks
    }
    counts = cut_shards(pool, targets, per_shard, SAMPLE_SCHEMA, f"{stage} shards")
    return {folder.name: n for folder, n in counts.items()}
