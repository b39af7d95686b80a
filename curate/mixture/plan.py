"""What the mixture holds, decided on the driver from the index alone: samples per task, the seeded draw, packing
in windows, and the order the task sequences interleave in. Memory is numpy arrays of ids and lengths (a few
bytes per pool sample and per drawn sample) plus one window of the packer; no text and no image bytes."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import TMP_SUFFIX
from curate.core.errors import ConfigError
from curate.mixture.index import Pool
from curate.mixture.pack import pack

log = logging.getLogger(__name__)
PLAN_DIR = "_plan"
PLAN_SCHEMA = pa.schema([("members", pa.list_(pa.int64())), ("lengths", pa.list_(pa.int32()))])


@dataclass(frozen=True, kw_only=True)
class TaskWeights:
    """Relative task weights; defaults are Qwen-VL's stage-2 sample counts in millions (paper Table 3, §2.1)."""

    caption: float = 19.7
    vqa: float = 3.6
    grounding: float = 3.5
    ref_grounding: float = 8.7
    grounded_caption: float = 8.7
    ocr: float = 24.8
    text: float = 7.8

    def __post_init__(self) -> None:
        if any(w < 0 for w in dataclasses.astuple(self)) or not sum(dataclasses.astuple(self)):
            raise ConfigError("weights must be >= 0 and not all zero")


class MixSettings(Protocol):
    """What the plan reads from a mixture config (`curate mix`'s MixConfig has these fields)."""

    budget: int
    weights: TaskWeights
    with_replacement: tuple[str, ...]
    seed: int
    seq_len: int
    window: int


def task_counts(pool: Pool, cfg: MixSettings) -> tuple[dict[str, int], dict[str, float]]:
    """Samples to draw per present task (largest remainder, summing to the budget) and the missing tasks."""
    weights = dataclasses.asdict(cfg.weights)
    present = {t: w for t, w in weights.items() if w > 0 and pool.size(t)}
    missing = {t: w for t, w in weights.items() if w > 0 and not pool.size(t)}
    if not present:
        raise ConfigError(f"no input holds samples of a weighted task ({', '.join(weights)})")
    total = sum(present.values())
    exact = {t: cfg.budget * w / total for t, w in present.items()}
    counts = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: exact[t] - counts[t], reverse=True)[: cfg.budget - sum(counts.values())]:
        counts[t] += 1
    for t, n in counts.items():
        if t not in cfg.with_replacement and n > pool.size(t):
            raise ConfigError(
                f"task {t} has {pool.size(t)} samples but the mixture needs {n}: add it to "
                "with_replacement or lower the budget"
            )
    return counts, missing


def draw(pool: Pool, counts: dict[str, int], cfg: MixSettings) -> dict[str, np.ndarray]:
    """Pool positions per task: seeded per (seed, task) so one task's draw never shifts another's."""
    chosen = {}
    for i, (task, n) in enumerate(sorted(counts.items())):
        rng = np.random.default_rng([cfg.seed, i])
        size = pool.size(task)
        chosen[task] = rng.integers(0, size, n) if task in cfg.with_replacement else rng.permutation(size)[:n]
    return chosen


def plan_path(out: Path, task: str) -> Path:
    return out / PLAN_DIR / f"{task}.parquet"


def pack_task(out: Path, task: str, pool: Pool, picks: np.ndarray, cfg: MixSettings) -> dict[str, Any]:
    """Best-fit-decreasing packing within windows of `cfg.window` drawn samples, in draw order; the sequences
    (global index ids and lengths of their samples) go to the task's plan file, one row group per window."""
    path = plan_path(out, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    sequences = tokens = 0
    with pq.ParquetWriter(tmp, PLAN_SCHEMA) as writer:
        for start in range(0, len(picks), cfg.window):
            window = picks[start : start + cfg.window]
            ids, lengths = pool.ids[task][window], pool.lengths[task][window]
            packed, too_long = pack(lengths.tolist(), cfg.seq_len)
            assert not too_long  # the pool holds only samples that fit a sequence
            members = [[int(ids[i]) for i in s.items] for s in packed]
            writer.write_table(
                pa.table({"members": members, "lengths": [s.lengths for s in packed]}, schema=PLAN_SCHEMA)
            )
            sequences += len(packed)
            tokens += int(lengths.sum())
    tmp.replace(path)
    return {"samples": len(picks), "sequences": sequences, "tokens": tokens}


def interleave(sequences: dict[str, int], seed: int) -> np.ndarray:
    """Task index (into sorted task names) of every output position: tasks interleave at random, each task's
    sequences keep their plan order."""
    tasks = sorted(sequences)
    labels = np.repeat(np.arange(len(tasks), dtype=np.int16), [sequences[t] for t in tasks])
    return labels[np.random.default_rng(seed).permutation(len(labels))]


def shard_specs(labels: np.ndarray, tasks: list[str], per_shard: int) -> list[dict[str, Any]]:
    """Per output shard: its positions' task indexes and where each task's sequences start in its plan."""
    specs = []
    seen = np.zeros(len(tasks), dtype=np.int64)
    for start in range(0, len(labels), per_shard):
        part = labels[start : start + per_shard]
        specs.append({"first": start, "labels": part.tolist(), "starts": seen.tolist()})
        seen += np.bincount(part, minlength=len(tasks))
    return specs
