"""Training data: a streaming, resumable reader of our WebDataset shards (or the stage-3 SFT JSON) and the
collator that turns packed sequences into model batches.

Every DataLoader worker of every process plays one *role*: an infinite stream of batches, epoch after epoch,
from its share of the shards (reshuffled per epoch) through a seeded shuffle buffer. PyTorch hands out the
workers' batches in strict rotation, so "N batches consumed" pins the position of every role: a resumed run
skips exactly what each role had delivered, without decoding it, and continues the same batch sequence.
"""

from __future__ import annotations

import glob
import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from curate.core import storage
from curate.core.errors import ConfigError
from curate.core.shards import read_output, read_tar
from curate.format import qwen
from curate.format import records as task_records
from curate.format.tokenizer import IGNORE, Encoded, Tokenizer
from curate.train.pixels import ImageInput

log = logging.getLogger(__name__)


def find_shards(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Sorted .tar files named by globs or held (recursively) in folders."""
    found: set[str] = set()
    for pattern in patterns:
        path = Path(pattern)
        matches = [str(p) for p in storage.glob(path, "**/*.tar")] if path.is_dir() else glob.glob(pattern)
        found.update(m for m in matches if m.endswith(".tar"))
    return sorted(found)


def split_holdout(train: list[str], evaluation: list[str], holdout: int) -> tuple[list[str], list[str]]:
    """(train, eval) shards: the eval list when given, else the last `holdout` train shards, held out."""
    if evaluation:
        held = {Path(s).resolve() for s in evaluation}
        return [s for s in train if Path(s).resolve() not in held], evaluation
    if holdout and len(train) <= holdout:
        raise ConfigError(f"{len(train)} training shard(s) cannot spare {holdout} for evaluation: set data.eval")
    return (train[:-holdout], train[-holdout:]) if holdout else (train, [])


def shard_item(row: dict[str, Any]) -> dict[str, Any] | None:
    """A shard row of `curate mix` (a packed sequence) or `curate build` (one task sample) as an item:
    {key, task, samples: [{prefix, target, image_bytes: [...], image_sizes}]}; None when it holds no task
    record."""
    if not task_records.is_task_record(row):
        return None
    items = [
        {
            "prefix": s["prefix"],
            "target": s["target"],
            "image_bytes": [s["image"]] if s["image"] else [],
            "image_sizes": s["image_sizes"],
        }
        for s in task_records.samples(row)
    ]
    return {"key": row["key"], "task": row["task"], "samples": items}


def read_shards(shards: list[str]) -> Iterator[dict[str, Any]]:
    """Items of the shards, in order; an unreadable shard (or its unreadable rest) is logged and skipped."""

    def warn(path: Path, err: Exception) -> None:
        log.warning("skipping unreadable shard data in %s: %s", path, err)

    for shard in shards:
        for row in read_tar(Path(shard), warn):
            item = shard_item(row)
            if item is not None:
                yield item


def image_spans(sample: dict[str, Any]) -> int:
    """How many `<img>` spans the sample's text holds (what its encoding will need slots for)."""
    if "conversation" in sample:
        return sum(len(qwen.IMAGE_SPAN.findall(turn["value"])) for turn in sample["conversation"])
    return len(qwen.IMAGE_SPAN.findall(sample["prefix"] + sample["target"]))


class Collator:
    """Items -> one padded batch. Samples of a packed sequence keep their own positions and attend only within
    themselves (segment ids). A sample whose image is missing or undecodable, or that does not fit in
    `seq_len`, is left out and counted, never cut (a cut could split an image span). Each image's slots and
    pixels follow the image plan (`ImageInput`): `image_slots` (row, first slot) and `image_grids` ([columns,
    rows] of local tiles) per image, `images` every view in order."""

    def __init__(self, tokenizer: Tokenizer, images: ImageInput, seq_len: int) -> None:
        self.tok, self.vision, self.seq_len = tokenizer, images, seq_len

    def encode(self, sample: dict[str, Any], spans: int | None = None) -> Encoded | None:
        """The sample's ids and labels (`spans`: its image spans, when the caller counted them); None when the plan
        cannot count one of its images."""
        slots = self.vision.slots(sample, image_spans(sample) if spans is None else spans)
        if slots is None:
            return None
        if "conversation" in sample:
            return self.tok.encode_chat(sample["conversation"], slots)
        return self.tok.encode_sample(sample["prefix"], sample["target"], slots)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        rows: list[tuple[list[int], list[int], list[int], list[int]]] = []
        images, slots, grids, tasks, keys, skipped = [], [], [], [], [], Counter()
        for item in items:
            ids, labels, segments, positions = [], [], [], []
            for seg, sample in enumerate(item["samples"]):
                spans = image_spans(sample)
                if spans > len(sample["image_bytes"]):
                    skipped["image_missing"] += 1
                    continue
                enc = self.encode(sample, spans)
                if enc is None:
                    skipped["image_size_unknown"] += 1
                    continue
                if len(ids) + len(enc.input_ids) > self.seq_len:
                    skipped["too_long"] += 1
                    continue
                try:
                    n = len(enc.images)
                    pixels, sample_grids = self.vision.pixels(sample["image_bytes"][:n], self.vision.sizes(sample, n))
                except Exception:  # noqa: BLE001 - undecodable image bytes are bad data, not a crash
                    skipped["image_decode_error"] += 1
                    continue
                images += pixels
                grids += sample_grids
                slots += [(len(rows), len(ids) + s) for s in enc.slots]
                ids += enc.input_ids
                labels += enc.labels
                segments += [seg] * len(enc.input_ids)
                positions += list(range(len(enc.input_ids)))
            if ids:
                rows.append((ids, labels, segments, positions))
                tasks.append(item["task"])
                keys.append(item["key"])
        batch = self._pad(rows, images, slots)
        batch["image_grids"] = torch.tensor(grids, dtype=torch.long).reshape(-1, 2)
        batch |= {"tasks": tasks, "keys": keys, "skipped": dict(skipped)}
        return batch

    def _pad(self, rows: list, images: list, slots: list) -> dict[str, Any]:
        t = max((len(r[0]) for r in rows), default=1)
        b = len(rows)
        batch = {
            "input_ids": torch.full((b, t), self.tok.pad, dtype=torch.long),
            "labels": torch.full((b, t), IGNORE, dtype=torch.long),
            "segments": torch.full((b, t), -1, dtype=torch.long),
            "positions": torch.zeros((b, t), dtype=torch.long),
        }
        for i, row in enumerate(rows):
            for name, values in zip(("input_ids", "labels", "segments", "positions"), row, strict=True):
                batch[name][i, : len(values)] = torch.tensor(values)
        size = self.vision.image_size if self.vision.plan == "qwen_vl" else self.vision.view_size
        batch["images"] = torch.stack(images) if images else torch.zeros((0, 3, size, size))
        batch["image_slots"] = torch.tensor(slots, dtype=torch.long).reshape(-1, 2)
        return batch


class RoleStream(IterableDataset):
    """Infinite, deterministic batches for each (process, worker) role; `start_batches` resumes mid-stream."""

    def __init__(self, collate: Collator, *, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        super().__init__()
        self.collate, self.batch_size, self.seed = collate, batch_size, seed
        self.rank, self.world = rank, world
        self.start_batches = 0  # batches this process consumed before (checkpoint data position)

    def epoch_items(self, epoch: int, role: int, roles: int) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def _role(self) -> tuple[int, int, int]:
        """(role, roles, batches to skip): worker w stands in for the role the rotation would serve next."""
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        local = (worker + self.start_batches) % workers
        skip = self.start_batches // workers + (1 if local < self.start_batches % workers else 0)
        return self.rank * workers + local, self.world * workers, skip

    def __iter__(self) -> Iterator[dict[str, Any]]:
        role, roles, skip = self._role()
        pending: list[dict[str, Any]] = []
        epoch = 0
        while True:
            seen = 0
            for item in self.epoch_items(epoch, role, roles):
                seen += 1
                pending.append(item)
                if len(pending) < self.batch_size:
                    continue
                group, pending = pending, []
                if skip:  # already trained on before the checkpoint: not decoded again
                    skip -= 1
                    continue
                batch = self.collate(group)
                batch["epoch"] = epoch
                yield batch
            if not seen:
                raise RuntimeError(f"data role {role} of {roles} got no items: too few shards or samples")
            epoch += 1


class ShardStream(RoleStream):
    """Shard items, shards reshuffled per epoch and dealt to roles (or, with fewer shards than roles, items
    dealt round-robin), then a seeded shuffle buffer."""

    def __init__(self, shards: list[str], collate: Collator, *, shuffle_buffer: int, **kwargs: Any) -> None:
        super().__init__(collate, **kwargs)
        if not shards:
            raise ConfigError("no training shards found (data.train)")
        self.shards, self.shuffle_buffer = shards, shuffle_buffer

    def epoch_items(self, epoch: int, role: int, roles: int) -> Iterator[dict[str, Any]]:
        order = [self.shards[i] for i in np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))]
        rng = random.Random(f"{self.seed}-{epoch}-{role}")
        seen = 0
        if len(order) >= roles:
            for item in shuffled(read_shards(order[role::roles]), self.shuffle_buffer, rng):
                seen += 1
                yield item
        if not seen:  # fewer shards than roles, or this role's shards held nothing readable: deal items instead
            items = (item for i, item in enumerate(read_shards(order)) if i % roles == role)
            yield from shuffled(items, self.shuffle_buffer, rng)


def shuffled(items: Iterator[dict[str, Any]], size: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Buffer shuffle: each item swaps with a random one of the last `size` (webdataset's scheme, seeded)."""
    if size <= 1:  # no buffer: the shard order is the only shuffle
        yield from items
        return
    buffer: list[dict[str, Any]] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = rng.randrange(size)
        buffer[i], item = item, buffer[i]
        yield item
    rng.shuffle(buffer)
    yield from buffer


class SftStream(RoleStream):
    """Stage-3 conversations from sft.json, reshuffled per epoch and dealt round-robin to roles."""

    def __init__(self, items: list[dict[str, Any]], collate: Collator, **kwargs: Any) -> None:
        super().__init__(collate, **kwargs)
        if not items:
            raise ConfigError("the SFT data holds no usable conversation")
        self.items = items

    def epoch_items(self, epoch: int, role: int, roles: int) -> Iterator[dict[str, Any]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.items))
        yield from (self.items[i] for i in order[role::roles])


def sft_items(path: str, image_sources: tuple[str, ...]) -> tuple[list[dict[str, Any]], Counter]:
    """Conversations of a `curate mix` sft.json as items; (items, skipped by reason). An `<img>` path is a file
    relative to the sft.json folder (`curate mix` writes them there), or else an image path of a task sample in
    `image_sources` (`curate build`/`ocr` outputs)."""
    if not Path(path).is_file():
        raise ConfigError(f"data.sft {path} not found (run curate mix)")
    root = Path(path).parent
    conversations = json.loads(Path(path).read_text())
    needed = {p for c in conversations for turn in c["conversations"] for p in qwen.IMAGE_SPAN.findall(turn["value"])}
    found: dict[str, bytes] = {p: (root / p).read_bytes() for p in needed if (root / p).is_file()}
    for folder in image_sources:
        for row in read_output(Path(folder), "parquet"):
            if row.get("images") and row["images"][0] in needed and row.get("image") is not None:
                found.setdefault(row["images"][0], row["image"])
    items, skipped = [], Counter()
    for convo in conversations:
        paths = [p for turn in convo["conversations"] for p in qwen.IMAGE_SPAN.findall(turn["value"])]
        if any(found.get(p) is None for p in paths):
            skipped["image_missing"] += 1
            continue
        sample = {"conversation": convo["conversations"], "image_bytes": [found[p] for p in paths]}
        items.append({"key": convo["id"], "task": "sft", "samples": [sample]})
    return items, skipped


def make_loader(stream: RoleStream, workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers else None,
        multiprocessing_context="spawn" if workers else None,  # no fork of a process holding threads/CUDA
    )


def eval_batches(items: Iterator[dict[str, Any]], collate: Collator, batch_size: int) -> Iterator[dict[str, Any]]:
    """One ordered pass over held-out items, in batches."""
    group: list[dict[str, Any]] = []
    for item in items:
        group.append(item)
        if len(group) == batch_size:
            yield collate(group)
            group = []
    if group:
        yield collate(group)
