"""The samples inside one row of a task output (read with curate.core.shards): a `curate mix` packed sequence
(several samples, image i of sample i) or a `curate build` / `curate ocr` task sample (one)."""

from __future__ import annotations

from typing import Any


def is_task_record(row: dict[str, Any]) -> bool:
    return "prefixes" in row or "prefix" in row


def samples(row: dict[str, Any]) -> list[dict[str, Any]]:
    """[{key, task, source, images, prefix, target, image, image_sizes, image_tokens, sequence}] of a row;
    `sequence` is the packed sequence's key, or None for a single task sample. `image_sizes` ([width, height]
    per image) is empty and `image_tokens` (slots per image under the mixture's plan) None where the row does
    not record them."""
    if "prefixes" in row:
        n = len(row["sample_keys"])
        images = row.get("image_bytes") or [None] * n
        sizes = row.get("image_sizes") or [[]] * n
        slots = row.get("image_tokens") or [None] * n
        return [
            {
                "key": key,
                "task": row["task"],
                "source": source,
                "images": paths,
                "prefix": prefix,
                "target": target,
                "image": image,
                "image_sizes": size or [],
                "image_tokens": slot,
                "sequence": row["key"],
            }
            for key, source, paths, prefix, target, image, size, slot in zip(
                row["sample_keys"],
                row["sources"],
                row["images"],
                row["prefixes"],
                row["targets"],
                images,
                sizes,
                slots,
                strict=True,
            )  # fmt: skip
        ]
    fields = ("key", "task", "source", "images", "prefix", "target")
    single = {"image": row.get("image"), "image_sizes": row.get("image_sizes") or [], "image_tokens": None}
    return [{**{k: row.get(k) for k in fields}, **single, "sequence": None}]
