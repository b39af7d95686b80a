"""`curate train`: the reference training loop (nanoGPT's shape) for the three Qwen-VL stages.

One output dir is one run (run_dir.py). Rerunning the same config resumes from the newest checkpoint and continues
the identical batch sequence; `torchrun --nproc_per_node K -m curate train CONFIG` trains with DDP (each process
streams its own shards).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

from curate.commands.train.config import TrainConfig
from curate.commands.train.run_dir import (
    MetricsLog,
    init_weights,
    load_checkpoint,
    prepare_run,
    save_checkpoint,
    write_report,
)
from curate.core.errors import ConfigError
from curate.core.run_folder import RunFolder, exclusive
from curate.format.tokenizer import Tokenizer, make_tokenizer
from curate.train.data import (
    Collator,
    RoleStream,
    SftStream,
    ShardStream,
    eval_batches,
    find_shards,
    make_loader,
    read_shards,
    sft_items,
    split_holdout,
)
from curate.train.device import Dist, autocast_for, setup_distributed
from curate.train.evaluate import generation_report, sparse_rows, task_losses
from curate.train.model import VLM, VLMConfig
from curate.train.optim import get_lr, make_optimizer
from curate.train.pixels import VIEW_PATCHES, ImageInput

log = logging.getLogger(__name__)
SFT_HOLDOUT = 20  # stage 3 holds out every 20th conversation (5%) when holdout_shards > 0


def build_model(cfg: TrainConfig) -> tuple[VLM, Tokenizer]:
    """The model of the config, its decoder vocabulary sized to the tokenizer, frozen as the stage says."""
    decoder = cfg.model.decoder
    tok = make_tokenizer(cfg.model.tokenizer or decoder.hf_path)  # an HF LM brings its own tokenizer by default
    decoder = dataclasses.replace(decoder, vocab_size=tok.vocab_size)
    model = VLM(
        VLMConfig(
            vision=cfg.model.vision, adapter=cfg.model.adapter, decoder=decoder, plan=cfg.image_plan,
            connector=cfg.model.connector,
        )
    )  # fmt: skip
    if cfg.stage == 1:  # Table 8: the LLM is frozen, ViT + adapter learn
        model.decoder.requires_grad_(False)
    if cfg.stage == 3:  # Table 8: the ViT is frozen, LLM + adapter learn
        model.vision.requires_grad_(False)
    return model, tok


def image_input(cfg: TrainConfig, model: VLM) -> ImageInput:
    """Slots and pixels under the run's image plan; deepseek_vl2 views are resized so the ViT sees 27 x 27
    patches per view, as SigLIP does at 384 px."""
    view = VIEW_PATCHES * model.vision.patch
    return ImageInput(cfg.image_plan, model.image_tokens(cfg.image_size), cfg.image_size, view_size=view)


def make_data(
    cfg: TrainConfig, tok: Tokenizer, dist: Dist, vision: ImageInput
) -> tuple[RoleStream, Callable[[], Iterator[dict]]]:
    """(training stream, a function giving a fresh pass over the held-out items)."""
    collate = Collator(tok, vision, cfg.data.seq_len)
    common = {"batch_size": cfg.data.batch_size, "seed": cfg.seed, "rank": dist.rank, "world": dist.world}
    if cfg.stage == 3:
        items, skipped = sft_items(cfg.data.sft or "", cfg.data.image_sources)
        if skipped:
            log.warning("sft: %s conversations left out (image not in data.image_sources)", dict(skipped))
        is_held = [bool(cfg.data.holdout_shards) and i % SFT_HOLDOUT == SFT_HOLDOUT - 1 for i in range(len(items))]
        held = [x for x, h in zip(items, is_held, strict=True) if h]
        train = [x for x, h in zip(items, is_held, strict=True) if not h]
        return SftStream(train, collate, **common), lambda: iter(held)
    shards = find_shards(cfg.data.train)
    if not shards:
        raise ConfigError(f"data.train {list(cfg.data.train)} matches no .tar shards (run curate mix or build)")
    train, held = split_holdout(shards, find_shards(cfg.data.eval) if cfg.data.eval else [], cfg.data.holdout_shards)
    log.info("data: %d training shards, %d held out", len(train), len(held))
    return ShardStream(train, collate, shuffle_buffer=cfg.data.shuffle_buffer, **common), lambda: read_shards(held)


def train_step(
    model: torch.nn.Module, batches: Iterator[dict], optimizer: torch.optim.Optimizer, cfg: TrainConfig, run: dict
) -> dict[str, Any]:
    """One optimizer step over grad_accum micro-batches; returns loss, tokens, images, skipped samples and
    `data_s`, the seconds the step waited for its batches (issue 20: the share of step time spent on data)."""
    losses, tokens, images, skipped, data_s = [], 0, 0, Counter(), 0.0
    for micro in range(cfg.grad_accum):
        waited = time.perf_counter()
        batch = next(batches)
        skipped.update(batch["skipped"])
        t = {k: v.to(run["device"], non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        data_s += time.perf_counter() - waited
        last = micro == cfg.grad_accum - 1
        sync = contextlib.nullcontext() if last or run["dist"].world == 1 else model.no_sync()
        with sync, run["autocast"]():
            _, loss = model(
                t["input_ids"], t["segments"], t["positions"], images=t["images"], image_slots=t["image_slots"],
                image_grids=t["image_grids"], labels=t["labels"],
            )  # fmt: skip
            (loss / cfg.grad_accum).backward()
        losses.append(loss.detach())
        tokens += int((t["segments"] >= 0).sum())
        images += len(t["images"])
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss = torch.stack(losses).mean()
    if run["dist"].world > 1:
        torch_dist.all_reduce(loss, op=torch_dist.ReduceOp.AVG)
    world = run["dist"].world
    return {"loss": float(loss), "tokens": tokens * world, "images": images, "skipped": skipped, "data_s": data_s}


def evaluate(model: VLM, tok: Tokenizer, cfg: TrainConfig, held: Callable[[], Iterator[dict]], run: dict) -> dict:
    """Per-task held-out loss and greedy-generation measures."""
    vision = image_input(cfg, model)
    collate = Collator(tok, vision, cfg.data.seq_len)
    model.eval()
    batches = islice(eval_batches(held(), collate, cfg.data.batch_size), cfg.eval.batches)
    tasks: dict[str, dict] = task_losses(model, batches, run["device"], run["autocast"])
    if cfg.eval.blank_images:
        blank = islice(eval_batches(held(), collate, cfg.data.batch_size), cfg.eval.batches)
        blank_losses = task_losses(model, map(blank_images, blank), run["device"], run["autocast"])
        for task, measures in blank_losses.items():
            tasks.setdefault(task, {})["loss_blank_images"] = measures["loss"]
    samples: dict[str, list[dict]] = {}
    for item in islice(held(), cfg.eval.batches * cfg.data.batch_size):  # the same held-out items as the losses
        group = samples.setdefault(item["task"], [])
        group += [s for s in item["samples"] if "prefix" in s][: cfg.eval.generate - len(group)]
    generated = generation_report(
        model, tok, {t: s for t, s in samples.items() if s}, vision=vision, max_new=cfg.eval.max_new_tokens,
        device=run["device"], autocast=run["autocast"],
    )  # fmt: skip
    report: dict[str, Any] = {"connector": cfg.model.connector}
    if cfg.eval.sparse.keep_ratios:
        with run["autocast"]():
            report["sparse"] = sparse_rows(
                model, tok, [s for group in samples.values() for s in group], vision=vision, cfg=cfg.eval.sparse,
                max_new=cfg.eval.max_new_tokens,
            )  # fmt: skip
    model.train()
    for task, measures in generated.items():
        tasks.setdefault(task, {}).update(measures)
    return {**report, "tasks": dict(sorted(tasks.items()))}


def blank_images(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with every image view all zeros: the normalisation mean, an image that shows nothing."""
    return {**batch, "images": torch.zeros_like(batch["images"])} if torch.is_tensor(batch.get("images")) else batch


def log_line(step: int, result: dict[str, Any], lr: float, seconds: float) -> str:
    return (
        f"step {step} | loss {result['loss']:.4f} | lr {lr:.2e} | {seconds * 1000:.0f} ms | "
        f"{result['tokens'] / seconds / 1000:.1f}k tok/s | {result['images'] / seconds:.1f} img/s | "
        f"data {result['data_s'] / seconds:.0%}"
    )


@dataclass
class Session:
    """Everything a run needs once set up: model (and its DDP wrapper), optimizer, data, where it resumes."""

    model: VLM
    wrapped: torch.nn.Module
    tok: Tokenizer
    optimizer: torch.optim.Optimizer
    batches: Iterator[dict]
    held: Callable[[], Iterator[dict]]
    start: int
    run: dict[str, Any]


def start_session(cfg: TrainConfig, overwrite: bool) -> Session:
    """Model, optimizer and data stream, restored from the newest checkpoint of the run when there is one."""
    dist, device = setup_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    model, tok = build_model(cfg)
    model.to(device)
    optimizer = make_optimizer(model, cfg.optim)
    resume = prepare_run(cfg, overwrite, dist)
    start, consumed = load_checkpoint(resume, model, optimizer, dist) if resume else (0, 0)
    if resume:
        log.info("resuming %s at step %d (%d batches consumed per process)", resume, start, consumed)
    elif cfg.init_from:
        init_weights(cfg.init_from, model)
    stream, held = make_data(cfg, tok, dist, image_input(cfg, model))
    stream.start_batches = consumed
    batches = iter(make_loader(stream, cfg.data.workers, pin_memory=device.startswith("cuda")))
    wrapped: torch.nn.Module = model
    if dist.world > 1:
        ids = [dist.local_rank] if device.startswith("cuda") else None
        wrapped = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
    if cfg.compile:  # the training forward only; checkpoints and evaluation use the plain module (same parameters)
        wrapped = torch.compile(wrapped)
    run = {"device": device, "autocast": autocast_for(cfg.precision, device), "dist": dist}
    return Session(model, wrapped, tok, optimizer, batches, held, start, run)


def main(cfg: TrainConfig, *, overwrite: bool = False, stop_after: int | None = None) -> dict[str, Any]:
    """Train (or resume) the run of `cfg`; returns the summary (stats.json once every step ran). The first
    process (rank 0) holds the run folder's lock for the whole run."""
    first = int(os.environ.get("RANK", "0")) == 0
    with exclusive(cfg.out_dir) if first else contextlib.nullcontext():
        return _train(cfg, overwrite, stop_after)


def _train(cfg: TrainConfig, overwrite: bool, stop_after: int | None) -> dict[str, Any]:
    s = start_session(cfg, overwrite)
    dist: Dist = s.run["dist"]
    metrics = MetricsLog(cfg.out_dir / "metrics.jsonl", keep_before=s.start, enabled=dist.main)
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    log.info("training %s: stage %d, steps %d..%d on %s x%d", cfg.name, cfg.stage, s.start, last - 1,
             s.run["device"], dist.world)  # fmt: skip
    for step in range(s.start, last):
        lr = get_lr(step, cfg.optim, cfg.steps)
        for group in s.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        began = time.perf_counter()
        result = train_step(s.wrapped, s.batches, s.optimizer, cfg, s.run)
        seconds = time.perf_counter() - began
        metrics.add(step, result, lr, seconds)
        if dist.main and (step % cfg.log_interval == 0 or step == last - 1):
            log.info(log_line(step, result, lr, seconds))
        done = step + 1
        if dist.main and (done % cfg.output.checkpoint_every == 0 or done == last):
            save_checkpoint(cfg, s.model, s.optimizer, done, dist)
        if cfg.eval.every and done % cfg.eval.every == 0 and done < cfg.steps:
            if dist.main:
                write_report(cfg, evaluate(s.model, s.tok, cfg, s.held, s.run), done, final=False)
            if dist.world > 1:
                torch_dist.barrier()  # the other processes wait for rank 0's evaluation
    return finish(cfg, s, metrics, last)


def finish(cfg: TrainConfig, s: Session, metrics: MetricsLog, last: int) -> dict[str, Any]:
    """Final evaluation and summary (rank 0) once every step ran; a stopped run only reports."""
    dist: Dist = s.run["dist"]
    if dist.world > 1:
        torch_dist.barrier()
    if last < cfg.steps:
        log.info("stopped after step %d of %d (checkpoint written); rerun to continue", last, cfg.steps)
        return metrics.summary(cfg, finished=False)
    summary = metrics.summary(cfg, finished=True)
    if dist.main:
        write_report(cfg, evaluate(s.model, s.tok, cfg, s.held, s.run), cfg.steps, final=True)
        RunFolder(cfg.out_dir, "train", resumed=s.start > 0).finish(summary)
    if dist.world > 1:
        torch_dist.barrier()  # the other processes wait for the evaluation before the group goes away
        torch_dist.destroy_process_group()
    return summary
