"""The samples inside one row of a task output (read with curate.core.shards): a `curate mix` packed sequence
(several samples, image i of sample i) or a `curate build` / `curate ocr` task sample (one)."""

from __future__ import annotations

from typing import Any


def is_task_record(row: dict[str, Any]) -> bool:
    return "prefixes" in row or "prefix" in row


def samples(row: dict[str, Any]) -> list[dict[str, Any]]:
    """[{key, task, source, images, prefix, target, image, sequence}] of a row; `sequence` is the packed
    sequence's key, or None for a single task sample."""
    if "prefixes" in row:
        images = row.get("image_bytes") or [None] * len(row["sample_keys"])
        return [
            {
                "key": key,
                "task": row["task"],
                "source": source,
                "images": paths,
                "prefix": prefix,
                "target": target,
                "image": image,
                "sequence": row["key"],
            }
            for key, source, paths, prefix, target, image in zip(
                row["sample_keys"],
                row["sources"],
                row["images"],
                row["prefixes"],
                row["targets"],
                images,
                strict=True,
            )  # fmt: skip
        ]
    fields = ("key", "task", "source", "images", "prefix", "target")
    return [{**{k: row.get(k) for k in fields}, "image": row.get("image"), "sequence": None}]
