"""The mixture's index of every input sample (issue 15): one parquet part per input shard, built by Ray workers.

A row holds what the draw, the packer and the writers need without the image bytes: task, key, source, the
sample's text, its image sizes and each image's token count under the mixture's image plan (issue 18), its token
count, and where its image lies (the input tar and the member's byte offset and size),
so a writer fetches any drawn sample's bytes with one seek.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic
from curate.core.errors import ConfigError
from curate.core.images import header_size
from curate.core.run_folder import read_run
from curate.core.shards import output_files, read_tar_index
from curate.core.storage import read_at
from curate.format.image_plan import sample_image_tokens
from curate.format.tokenizer import make_tokenizer

log = logging.getLogger(__name__)
INDEX_DIR = "index"
INDEX_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("key", pa.string()),
        ("source", pa.string()),
        ("images", pa.list_(pa.string())),
        ("prefix", pa.string()),
        ("target", pa.string()),
        ("image_sizes", pa.list_(pa.list_(pa.int32()))),  # [width, height] per image, as recorded in the sample
        ("image_tokens", pa.list_(pa.int32())),  # slots of each image under the plan; null when a size is unknown
        ("tokens", pa.int32()),  # prefix + target as the trainer encodes them, with the mix's tokenizer and plan
        ("input", pa.int16()),  # which of the mix's inputs (config `inputs`, in order) holds the sample
        ("shard", pa.string()),  # the tar, relative to that input
        ("image_offset", pa.int64()),  # byte offset of <key>.jpg in that tar; -1 when the sample has no bytes
        ("image_size", pa.int64()),
        ("image_missing", pa.bool_()),  # the sample names an image whose bytes are not in its shard
    ]
)
TEXT_COLUMNS = [
    *("key", "source", "images", "prefix", "target", "image_sizes", "image_tokens"),
    *("input", "shard", "image_offset", "image_size"),
]


def input_shards(inputs: tuple[str, ...]) -> list[list[Any]]:
    """[input number, tar path relative to it] of every task shard of the inputs (finished `curate build` /
    `curate ocr` outputs), in a fixed order."""
    shards = []
    for number, folder in enumerate(inputs):
        path = Path(folder)
        run = read_run(path)
        if run is None or run.get("command") not in ("build", "ocr") or not (path / "_SUCCESS").exists():
            raise ConfigError(f"mix input {folder} is not a finished `curate build` or `curate ocr` output")
        found = output_files(path, "tar")
        if not found:
            raise ConfigError(f"mix input {folder} holds no <task>/shards/*.tar")
        shards += [[number, str(p.relative_to(path))] for p in found]
    return shards


def shard_file(inputs: list[str], number: int, shard: str) -> Path:
    return Path(inputs[number]) / shard


def index_path(out: Path, part: int) -> Path:
    return out / INDEX_DIR / f"part-{part:06d}.parquet"


class IndexWorker:
    """A Ray actor that indexes whole input shards (the tokenizer loaded once)."""

    def __init__(self, out: str, inputs: list[str], tokenizer: str | None, image_plan: str = "qwen_vl") -> None:
        self.out, self.inputs, self.image_plan = Path(out), inputs, image_plan
        self.tokenizer = make_tokenizer(tokenizer)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        chunk = item["chunk"]
        number, shard = item["spec"]
        path = shard_file(self.inputs, number, shard)
        rows = []
        for meta, where in read_tar_index(path):
            offset, size = where.get("jpg", (-1, 0))
            sizes = _recorded_sizes(meta, path, offset, size)
            slots = sample_image_tokens(self.image_plan, sizes, len(meta["images"]))
            tokens = self.tokenizer.count_sample(meta["prefix"], meta["target"], slots) if slots is not None else 0
            rows.append(
                {
                    **{k: meta[k] for k in ("task", "key", "source", "images", "prefix", "target")},
                    "image_sizes": sizes,
                    "image_tokens": slots,
                    "tokens": tokens,
                    "input": number,
                    "shard": shard,
                    "image_offset": offset,
                    "image_size": size,
                    "image_missing": bool(meta["images"]) and offset < 0,
                }
            )
        write_parquet_atomic(index_path(self.out, chunk), pa.Table.from_pylist(rows, schema=INDEX_SCHEMA))
        info = {"rows": len(rows), "tasks": dict(Counter(r["task"] for r in rows))}
        return {"chunk": chunk, "info": info}


def _recorded_sizes(meta: dict[str, Any], path: Path, offset: int, size: int) -> list[list[int]]:
    """The sample's recorded image sizes; for shards written before samples recorded them, the stored image's
    header (build keeps the original image) for images[0]."""
    if meta.get("image_sizes"):
        return [[int(w), int(h)] for w, h in meta["image_sizes"]]
    if meta["images"] and offset >= 0:
        try:
            return [list(header_size(read_at(path, offset, size)))]
        except Exception:  # noqa: BLE001 - unreadable bytes: the size stays unknown and the sample is counted out
            return []
    return []


class Pool:
    """Per task: the global index row ids of the samples a mixture may draw, and their token counts, plus how
    many were left out and why (image bytes missing; image size unknown to the plan; longer than a sequence).
    Held as numpy arrays: 12 bytes per input sample, no text, no bytes."""

    def __init__(self, out: Path, parts: int, seq_len: int) -> None:
        ids: dict[str, list[np.ndarray]] = {}
        lengths: dict[str, list[np.ndarray]] = {}
        self.unpackable: Counter = Counter()
        self.image_missing: Counter = Counter()
        self.size_unknown: Counter = Counter()
        self.offsets = np.zeros(parts + 1, dtype=np.int64)
        for part in range(parts):
            table = pq.read_table(index_path(out, part), columns=["task", "tokens", "image_missing", "image_tokens"])
            self.offsets[part + 1] = self.offsets[part] + table.num_rows
            for task in pc.unique(table.column("task")).to_pylist():
                mask = pc.equal(table.column("task"), task).to_numpy(zero_copy_only=False)
                tokens = table.column("tokens").to_numpy()[mask]
                missing = table.column("image_missing").to_numpy(zero_copy_only=False)[mask]
                unknown = table.column("image_tokens").is_null().to_numpy(zero_copy_only=False)[mask] & ~missing
                usable = ~missing & ~unknown
                fits = (tokens <= seq_len) & usable
                self.image_missing[task] += int(missing.sum())
                self.size_unknown[task] += int(unknown.sum())
                self.unpackable[task] += int(((tokens > seq_len) & usable).sum())
                rows = np.flatnonzero(mask).astype(np.int64) + self.offsets[part]
                ids.setdefault(task, []).append(rows[fits])
                lengths.setdefault(task, []).append(tokens[fits].astype(np.int32))
        self.ids = {t: np.concatenate(v) for t, v in ids.items()}
        self.lengths = {t: np.concatenate(v) for t, v in lengths.items()}

    def size(self, task: str) -> int:
        return len(self.ids[task]) if task in self.ids else 0
