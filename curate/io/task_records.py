"""The samples inside one record of a task output: a `curate mix` packed sequence (several samples, image i of
sample i) or a `curate build` / `curate ocr` task sample (one). Shards and parquet parts hold the same records;
only where the image bytes sit differs, so readers pass an `image(i)` accessor (i None = the single sample's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ImageOf = Callable[[int | None], bytes | None]


def is_task_record(meta: dict[str, Any]) -> bool:
    return "prefixes" in meta or "prefix" in meta


def samples(meta: dict[str, Any], image: ImageOf) -> list[dict[str, Any]]:
    """[{key, task, prefix, target, image, sequence}] of a record; `sequence` is the packed sequence's key or None."""
    if "prefixes" in meta:
        return [
            {"key": key, "task": meta["task"], "prefix": p, "target": t, "image": image(i), "sequence": meta["key"]}
            for i, (key, p, t) in enumerate(zip(meta["sample_keys"], meta["prefixes"], meta["targets"], strict=True))
        ]
    one = {"key": meta["key"], "task": meta["task"], "prefix": meta["prefix"], "target": meta["target"]}
    return [{**one, "image": image(None), "sequence": None}]


def tar_image(raw: dict[str, Any]) -> ImageOf:
    """Images of a WebDataset sample: `<key>.<i>.jpg` per packed sample, `<key>.jpg` for a single one."""
    return lambda i: raw.get("jpg" if i is None else f"{i}.jpg")


def parquet_image(row: dict[str, Any]) -> ImageOf:
    """Images of a parquet row: `image_bytes[i]` per packed sample, `image` for a single one."""
    return lambda i: row.get("image") if i is None else row["image_bytes"][i]
