"""Sequence shards of a mixture, written by Ray workers (issue 15): a worker takes one output shard's positions,
reads those sequences from the task plans, their samples' text from the index, and their image bytes from the
input shards (one seek each), and writes the shard. Nothing passes through the driver."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.chunks import read_rows
from curate.core.shards import write_shard
from curate.core.storage import read_at
from curate.mixture.index import TEXT_COLUMNS, index_path, shard_file
from curate.mixture.plan import plan_path

SEQUENCE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("task", pa.string()),
        ("tokens", pa.int32()),
        ("sample_keys", pa.list_(pa.string())),
        ("sources", pa.list_(pa.string())),
        ("prefixes", pa.list_(pa.string())),
        ("targets", pa.list_(pa.string())),
        ("images", pa.list_(pa.list_(pa.string()))),
        ("boundaries", pa.list_(pa.list_(pa.int32()))),  # [start, length] of each sample, in tokens
        ("image_sizes", pa.list_(pa.list_(pa.list_(pa.int32())))),  # per sample: [width, height] per image
        ("image_tokens", pa.list_(pa.list_(pa.int32()))),  # per sample: slots per image under the image plan
        ("image_bytes", pa.list_(pa.binary())),  # images[i][0] bytes of sample i (null when it has none)
    ]
)
CACHED_PARTS = 256  # index parts a worker keeps (text columns only): bounded, whatever the input size


def sequence_key(position: int) -> str:
    return f"seq-{position:08d}"


class MixWriter:
    """A Ray actor writing whole output shards of sequences."""

    def __init__(self, out: str, inputs: list[str], tasks: list[str], offsets: list[int]) -> None:
        self.out, self.inputs, self.tasks = Path(out), inputs, tasks
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.parts: OrderedDict[int, pa.Table] = OrderedDict()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        chunk, spec = item["chunk"], item["spec"]
        labels = spec["labels"]
        plans = {}
        for t, task in enumerate(self.tasks):
            n = labels.count(t)
            if n:
                start = spec["starts"][t]
                plans[t] = iter(list(read_rows(plan_path(self.out, task), start, start + n)))
        sequences = [(t, next(plans[t])) for t in labels]
        found = iter(self._samples([m for _, seq in sequences for m in seq["members"]]))
        rows = []
        for i, (t, seq) in enumerate(sequences):
            samples = [next(found) for _ in seq["members"]]
            rows.append(_sequence_row(sequence_key(spec["first"] + i), self.tasks[t], seq["lengths"], samples))
        write_shard(self.out, chunk, rows, SEQUENCE_SCHEMA)
        info = {"sequences": len(rows), "samples": sum(len(r["sample_keys"]) for r in rows)}
        return {"chunk": chunk, "info": info}

    def _samples(self, members: list[int]) -> list[dict[str, Any]]:
        """Index rows of global ids `members` (in that order), each with its image bytes (or None)."""
        ids = np.asarray(members, dtype=np.int64)
        parts = np.searchsorted(self.offsets, ids, side="right") - 1
        found: list[dict[str, Any]] = [{}] * len(ids)
        for part in np.unique(parts).tolist():
            where = np.flatnonzero(parts == part)
            rows = self._part(part).take(pa.array(ids[where] - self.offsets[part])).to_pylist()
            for i, row in zip(where.tolist(), rows, strict=True):
                found[i] = row
        for row in found:
            has = row["image_offset"] >= 0
            where = shard_file(self.inputs, row["input"], row["shard"])
            row["image"] = read_at(where, row["image_offset"], row["image_size"]) if has else None
        return found

    def _part(self, part: int) -> pa.Table:
        if part in self.parts:
            self.parts.move_to_end(part)
            return self.parts[part]
        table = pq.read_table(index_path(self.out, part), columns=TEXT_COLUMNS)
        self.parts[part] = table
        while len(self.parts) > CACHED_PARTS:
            self.parts.popitem(last=False)
        return table


def _sequence_row(key: str, task: str, lengths: list[int], samples: list[dict[str, Any]]) -> dict[str, Any]:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist() if lengths else []
    return {
        "key": key,
        "task": task,
        "tokens": int(sum(lengths)),
        "sample_keys": [s["key"] for s in samples],
        "sources": [s["source"] for s in samples],
        "prefixes": [s["prefix"] for s in samples],
        "targets": [s["target"] for s in samples],
        "images": [s["images"] for s in samples],
        "boundaries": [[int(a), int(b)] for a, b in zip(starts, lengths, strict=True)],
        "image_sizes": [s["image_sizes"] for s in samples],
        "image_tokens": [s["image_tokens"] for s in samples],
        "image_bytes": [s["image"] for s in samples],
    }
