"""`curate mix`: read task samples, draw a weighted mixture, pack each task into sequences, write shards, parquet,
the stage-3 SFT JSON and the realized mixture table."""

from __future__ import annotations

import dataclasses
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.build import prepare_output
from curate.errors import ConfigError
from curate.io.atomic import write_atomic, write_bytes_atomic, write_parquet_atomic
from curate.io.tar import add_member
from curate.mix.pack import Sequence, pack
from curate.mix.sft import check_conversation, conversations
from curate.mix.tokens import make_counter
from curate.stage2_config import MixConfig

log = logging.getLogger(__name__)
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
        ("image_bytes", pa.list_(pa.binary())),  # images[i][0] bytes of sample i (null when it has none)
    ]
)


def load_pool(inputs: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Every task sample (with its image bytes) under the input dirs, grouped by task, in a stable order."""
    pool: dict[str, list[dict[str, Any]]] = {}
    for folder in inputs:
        parts = sorted(Path(folder).glob("*/parquet/part-*.parquet"))
        if not parts:
            raise ConfigError(f"mix input {folder} holds no <task>/parquet/part-*.parquet (run curate build/ocr)")
        for part in parts:
            for row in pq.read_table(part).to_pylist():
                pool.setdefault(row["task"], []).append(row)
    return pool


def packable(pool: dict[str, list], lengths: dict[str, list[int]], seq_len: int) -> tuple[dict, dict[str, int]]:
    """The pool without samples longer than a sequence (they can never be packed, and are never cut: a cut
    could split an image span), and how many each task lost."""
    kept = {t: [s for s, n in zip(pool[t], lengths[t], strict=True) if n <= seq_len] for t in pool}
    kept_lengths = {t: [n for n in lengths[t] if n <= seq_len] for t in pool}
    dropped = {t: len(pool[t]) - len(kept[t]) for t in pool if len(pool[t]) != len(kept[t])}
    return (kept, kept_lengths), dropped


def plan(pool: dict[str, list], cfg: MixConfig) -> tuple[dict[str, int], dict[str, float]]:
    """Samples to draw per present task (largest remainder, summing to the budget) and the missing tasks."""
    weights = dataclasses.asdict(cfg.weights)
    present = {t: w for t, w in weights.items() if w > 0 and pool.get(t)}
    missing = {t: w for t, w in weights.items() if w > 0 and not pool.get(t)}
    if not present:
        raise ConfigError(f"no input holds samples of a weighted task ({', '.join(weights)})")
    total = sum(present.values())
    exact = {t: cfg.budget * w / total for t, w in present.items()}
    counts = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: exact[t] - counts[t], reverse=True)[: cfg.budget - sum(counts.values())]:
        counts[t] += 1
    for t, n in counts.items():
        if t not in cfg.with_replacement and n > len(pool[t]):
            raise ConfigError(
                f"task {t} has {len(pool[t])} samples but the mixture needs {n}: add it to "
                "with_replacement or lower the budget"
            )
    return counts, missing


def draw(pool: dict[str, list], counts: dict[str, int], cfg: MixConfig) -> dict[str, list[int]]:
    """Pool indexes per task: seeded per (seed, task) so one task's draw never shifts another's."""
    chosen = {}
    for i, (task, n) in enumerate(sorted(counts.items())):
        rng = np.random.default_rng([cfg.seed, i])
        size = len(pool[task])
        picks = rng.integers(0, size, n) if task in cfg.with_replacement else rng.permutation(size)[:n]
        chosen[task] = [int(p) for p in picks]
    return chosen


def run_mix(cfg: MixConfig, overwrite: bool = False) -> dict[str, Any]:
    out = cfg.out_dir
    counter = make_counter(cfg.tokenizer)
    raw_pool = load_pool(cfg.inputs)
    raw_lengths = {t: [counter.count(s["prefix"] + s["target"]) for s in samples] for t, samples in raw_pool.items()}
    (pool, lengths), unpackable = packable(raw_pool, raw_lengths, cfg.seq_len)
    counts, missing = plan(pool, cfg)
    prepare_output(out, cfg, overwrite)
    chosen = draw(pool, counts, cfg)
    packed: list[tuple[str, Sequence]] = []
    table: dict[str, dict[str, Any]] = {}
    for task, picks in chosen.items():
        sequences, _ = pack([lengths[task][p] for p in picks], cfg.seq_len)
        packed += [(task, s) for s in sequences]
        used = sum(s.tokens for s in sequences)
        table[task] = {
            "samples": len(picks),
            "pool": len(pool[task]),
            "unpackable": unpackable.get(task, 0),
            "sequences": len(sequences),
            "tokens": used,
            "efficiency": round(used / (len(sequences) * cfg.seq_len), 4) if sequences else 0.0,
        }
    order = np.random.default_rng(cfg.seed).permutation(len(packed))  # tasks interleave in the final order
    _write_sequences(out, [packed[i] for i in order], pool, chosen, cfg.output.samples_per_shard)
    sft = list(
        conversations([s for t in sorted(pool) for s in pool[t]], cfg.sft.conversations, cfg.seed, cfg.sft.max_turns)
    )
    bad = [item["id"] for item in sft if check_conversation(item)]
    if bad:
        raise RuntimeError(f"SFT conversations break the finetune rules: {bad[:5]}")
    write_bytes_atomic(out / "sft.json", json.dumps(sft, ensure_ascii=False, indent=1).encode())
    stats = _stats(cfg, table, missing, counter.name, len(sft))
    write_bytes_atomic(out / "stats.json", json.dumps(stats, indent=2).encode())
    write_bytes_atomic(out / "_SUCCESS", b"")
    return stats


def _stats(cfg: MixConfig, table: dict[str, dict], missing: dict[str, float], tokenizer: str, sft: int) -> dict:
    samples = sum(r["samples"] for r in table.values()) or 1
    for row in table.values():
        row["share"] = round(row["samples"] / samples, 4)
    weights = dataclasses.asdict(cfg.weights)
    present_weight = sum(weights[t] for t in table)
    for task, row in table.items():
        row["target_share"] = round(weights[task] / present_weight, 4)
    capacity = sum(r["sequences"] for r in table.values()) * cfg.seq_len
    return {
        "name": cfg.name,
        "seed": cfg.seed,
        "seq_len": cfg.seq_len,
        "tokenizer": tokenizer,
        "tasks": dict(sorted(table.items())),
        "missing_tasks": missing,
        "packing_efficiency": round(sum(r["tokens"] for r in table.values()) / capacity, 4) if capacity else 0.0,
        "sft_conversations": sft,
    }


def _write_sequences(
    out: Path, packed: list[tuple[str, Sequence]], pool: dict[str, list], chosen: dict[str, list[int]], per_shard: int
) -> None:
    for start in range(0, len(packed), per_shard):
        shard = start // per_shard
        rows = [
            _sequence_row(f"seq-{start + i:08d}", task, seq, [pool[task][chosen[task][j]] for j in seq.items])
            for i, (task, seq) in enumerate(packed[start : start + per_shard])
        ]
        write_atomic(out / "shards" / f"shard-{shard:06d}.tar", lambda tmp, rows=rows: _write_tar(tmp, rows))
        write_parquet_atomic(
            out / "parquet" / f"part-{shard:06d}.parquet", pa.Table.from_pylist(rows, schema=SEQUENCE_SCHEMA)
        )


def _sequence_row(key: str, task: str, seq: Sequence, samples: list[dict]) -> dict[str, Any]:
    return {
        "key": key,
        "task": task,
        "tokens": seq.tokens,
        "sample_keys": [s["key"] for s in samples],
        "sources": [s["source"] for s in samples],
        "prefixes": [s["prefix"] for s in samples],
        "targets": [s["target"] for s in samples],
        "images": [s["images"] for s in samples],
        "boundaries": [list(b) for b in seq.boundaries()],
        "image_bytes": [s["image"] for s in samples],
    }


def _write_tar(tmp: Path, rows: list[dict[str, Any]]) -> None:
    """One WebDataset sample per sequence: <key>.json (all but bytes) + <key>.<i>.jpg per sample image."""
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            meta = {k: v for k, v in row.items() if k != "image_bytes"}
            add_member(tar, f"{row['key']}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True).encode())
            for i, image in enumerate(row["image_bytes"]):
                if image is not None:
                    add_member(tar, f"{row['key']}.{i}.jpg", image)


def mixture_table(stats: dict[str, Any]) -> str:
    """The realized mixture: task, samples, share (vs target), sequences, tokens, packing efficiency."""
    lines = [
        f"curate mix {stats['name']} (seq_len {stats['seq_len']}, tokenizer {stats['tokenizer']})",
        f"  {'task':<18}{'samples':>9}{'share':>8}{'target':>8}{'sequences':>11}{'tokens':>12}{'packing':>9}",
    ]
    for task, r in stats["tasks"].items():
        lines.append(
            f"  {task:<18}{r['samples']:>9}{r['share']:>8.1%}{r['target_share']:>8.1%}{r['sequences']:>11}"
            f"{r['tokens']:>12}{r['efficiency']:>9.1%}"
        )
    for task, weight in stats["missing_tasks"].items():
        lines.append(f"  {task:<18}{'0':>9}   (weight {weight}: no input holds {task} samples; shares renormalized)")
    lines.append(
        f"  packing efficiency {stats['packing_efficiency']:.1%}; {stats['sft_conversations']} SFT "
        "conversations in sft.json"
    )
    return "\n".join(lines)
