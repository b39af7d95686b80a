"""`curate mix`: index the task samples of the inputs, draw a weighted mixture, pack each task into sequences in
windows, write sequence shards + parquet, the stage-3 SFT JSON and the realized mixture table (issue 15).

The driver never holds image bytes or the pool's text: Ray workers index the input shards (`index/`), the draw
and the packer work on id and length arrays (`plan.py`), and Ray workers write the output shards, fetching each
drawn sample's bytes from its input shard. Every step is resumable: index parts and shards are per-chunk outputs
with markers, the plan is rebuilt deterministically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.commands.mix.config import MixConfig
from curate.core.atomic import write_bytes_atomic
from curate.core.chunks import WorkerPool, run_chunks
from curate.core.config import fingerprint, to_dict, to_yaml
from curate.core.ray_session import ray_session
from curate.core.run_folder import open_run, paths_digest
from curate.core.shards import read_parquet
from curate.core.storage import exists, read_at
from curate.format.tokenizer import make_tokenizer
from curate.mixture import plan
from curate.mixture.index import INDEX_SCHEMA, IndexWorker, Pool, index_path, input_shards, shard_file
from curate.mixture.sft import (
    SFT_IMAGES,
    caption_dialogues,
    caption_sample,
    check_conversation,
    image_name,
    question_conversation,
    question_conversations,
)
from curate.mixture.write import MixWriter

log = logging.getLogger(__name__)


def run_mix(cfg: MixConfig, overwrite: bool = False) -> dict[str, Any]:
    started = time.time()
    tokenizer = make_tokenizer(cfg.tokenizer)  # a bad tokenizer fails here, before Ray
    shards = input_shards(cfg.inputs)
    models = paths_digest([cfg.tokenizer]) if cfg.tokenizer else ""
    identity = {"config": fingerprint(cfg), "input": paths_digest(cfg.inputs), "models": models}
    with open_run(cfg.out_dir, "mix", identity, to_dict(cfg), to_yaml(cfg), overwrite=overwrite) as run:
        if run.complete:
            log.info("%s is a finished mixture of this config: nothing to do", cfg.out_dir)
            return run.read_stats()
        out = cfg.out_dir.resolve()
        with ray_session(cfg.ray.address, cfg.ray.num_cpus):
            inputs = [str(Path(p).resolve()) for p in cfg.inputs]
            kwargs = {"out": str(out), "inputs": inputs, "tokenizer": cfg.tokenizer, "image_plan": cfg.image_plan}
            pool = WorkerPool(IndexWorker, kwargs)
            markers = run_chunks(run, "index", shards, pool, "mix index")
            pool.close()
            samples = Pool(out, len(shards), cfg.seq_len)
            table, missing, specs, tasks = _plan(out, samples, cfg)
            kwargs = {"out": str(out), "inputs": inputs, "tasks": tasks, "offsets": samples.offsets.tolist()}
            pool = WorkerPool(MixWriter, kwargs)
            run_chunks(run, "write", specs, pool, "mix shards")
            pool.close()
        sft = write_sft(out, len(markers), cfg, inputs)
        stats = _stats(cfg, table, missing, tokenizer=tokenizer.name, sft=sft, elapsed=time.time() - started)
        run.finish(stats, scratch=(plan.PLAN_DIR,))
        return stats


def _plan(out: Path, pool: Pool, cfg: MixConfig) -> tuple[dict, dict, list, list[str]]:
    """Counts, draw and windowed packing per task; (mixture table, missing tasks, shard specs, task names)."""
    counts, missing = plan.task_counts(pool, cfg)
    chosen = plan.draw(pool, counts, cfg)
    table = {}
    for task in sorted(chosen):
        packed = plan.pack_task(out, task, pool, chosen[task], cfg)
        table[task] = {
            "samples": packed["samples"],
            "pool": pool.size(task),
            "unpackable": pool.unpackable.get(task, 0),
            "image_missing": pool.image_missing.get(task, 0),
            "image_size_unknown": pool.size_unknown.get(task, 0),
            "sequences": packed["sequences"],
            "tokens": packed["tokens"],
            "efficiency": round(packed["tokens"] / (packed["sequences"] * cfg.seq_len), 4)
            if packed["sequences"]
            else 0.0,
        }
        log.info("mix %s: %d samples -> %d sequences", task, packed["samples"], packed["sequences"])
    tasks = sorted(table)
    labels = plan.interleave({t: table[t]["sequences"] for t in tasks}, cfg.seed)
    return table, missing, plan.shard_specs(labels, tasks, cfg.output.samples_per_shard), tasks


def _index_rows(out: Path, parts: int, tasks: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Index rows of the given tasks whose image bytes exist, part by part (one row group in memory)."""
    columns = [c for c in INDEX_SCHEMA.names if c != "tokens"]
    for part in range(parts):
        for row in read_parquet(index_path(out, part), columns):
            if row["task"] in tasks and row["images"] and row["image_offset"] >= 0:
                yield row


def write_sft(out: Path, parts: int, cfg: MixConfig, inputs: list[str]) -> int:
    """sft.json and its images (sft_images/): question conversations first, then two-picture caption dialogues,
    up to cfg.sft.conversations; returns how many."""
    count = cfg.sft.conversations
    items, images = [], {}
    if count:
        questions = question_conversations(_index_rows(out, parts, ("vqa", "ref_grounding")), cfg.sft.max_turns)
        for row, pairs in questions:
            if len(items) >= count:
                break
            items.append(question_conversation(len(items) + 1, image_name(row), pairs))
            images[image_name(row)] = row
        if len(items) < count:
            captions = caption_sample(_index_rows(out, parts, ("caption",)), 4 * (count - len(items)), cfg.seed)
            for convo, row_a, row_b in caption_dialogues(captions, len(items), count, cfg.seed):
                items.append(convo)
                images |= {image_name(row_a): row_a, image_name(row_b): row_b}
    bad = [item["id"] for item in items if check_conversation(item)]
    if bad:
        raise RuntimeError(f"SFT conversations break the finetune rules: {bad[:5]}")
    for name, row in sorted(images.items()):
        if not exists(out / name):
            image = read_at(shard_file(inputs, row["input"], row["shard"]), row["image_offset"], row["image_size"])
            write_bytes_atomic(out / name, image)
    write_bytes_atomic(out / "sft.json", json.dumps(items, ensure_ascii=False, indent=1).encode())
    return len(items)


def _stats(
    cfg: MixConfig, table: dict, missing: dict[str, float], *, tokenizer: str, sft: int, elapsed: float
) -> dict:
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
        "window": cfg.window,
        "tokenizer": tokenizer,
        "image_plan": cfg.image_plan,
        "tasks": dict(sorted(table.items())),
        "missing_tasks": missing,
        "packing_efficiency": round(sum(r["tokens"] for r in table.values()) / capacity, 4) if capacity else 0.0,
        "sequences": sum(r["sequences"] for r in table.values()),
        "sft_conversations": sft,
        "sft_images": SFT_IMAGES,
        "elapsed_s": round(elapsed, 2),
    }
