"""`curate train`: the reference training loop (nanoGPT's shape) for the three Qwen-VL stages.

One output dir is one run: `run.json` pins the config, `checkpoints/step-N.pt` hold {model, optimizer, step,
data position, config, rng}, `metrics.jsonl` one line per step, `eval_report.{json,md}` the final evaluation.
Rerunning the same config resumes from the newest checkpoint and continues the identical batch sequence;
`torchrun --nproc_per_node K -m curate train CONFIG` trains with DDP (each process streams its own shards).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

from curate.config import to_dict, to_yaml
from curate.errors import ConfigError
from curate.io.atomic import write_atomic, write_bytes_atomic
from curate.train.config import OptimConfig, TrainConfig
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
from curate.train.evaluate import generation_report, task_losses
from curate.train.model import VLM, VLMConfig
from curate.train.report import eval_markdown
from curate.train.tokenizer import Tokenizer, make_tokenizer

log = logging.getLogger(__name__)
SFT_HOLDOUT = 20  # stage 3 holds out every 20th conversation (5%) when holdout_shards > 0


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """torchrun's environment -> a process group (NCCL on GPUs, gloo on CPUs); a plain run is one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if world == 1:
        return Dist()
    return Dist(torch_dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, dist: Dist) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is available; use auto or cpu")
    if name == "cpu" or not torch.cuda.is_available():
        return "cpu"
    torch.cuda.set_device(dist.local_rank)
    return f"cuda:{dist.local_rank}"


def autocast_for(precision: str, device: str) -> Callable[[], Any]:
    """bf16 autocast on devices that support it ('auto'), or as asked; fp32 otherwise."""
    kind = device.split(":")[0]
    bf16 = precision == "bf16" or (precision == "auto" and kind == "cuda" and torch.cuda.is_bf16_supported())
    return lambda: torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16)


def build_model(cfg: TrainConfig) -> tuple[VLM, Tokenizer]:
    """The model of the config, its decoder vocabulary sized to the tokenizer, frozen as the stage says."""
    decoder = cfg.model.decoder
    tok = make_tokenizer(cfg.model.tokenizer or decoder.hf_path)  # an HF LM brings its own tokenizer by default
    decoder = dataclasses.replace(decoder, vocab_size=tok.vocab_size)
    model = VLM(VLMConfig(vision=cfg.model.vision, adapter=cfg.model.adapter, decoder=decoder))
    if cfg.stage == 1:  # Table 8: the LLM is frozen, ViT + adapter learn
        model.decoder.requires_grad_(False)
    if cfg.stage == 3:  # Table 8: the ViT is frozen, LLM + adapter learn
        model.vision.requires_grad_(False)
    return model, tok


def vit_lr_scale(name: str, layers: int, decay: float) -> float:
    """Layer-wise LR decay for the ViT (Table 8: 0.95): the top block gets decay^1, embeddings decay^(L+1)."""
    parts = name.split(".")
    if "resblocks" in parts:
        depth = int(parts[parts.index("resblocks") + 1]) + 1
    elif any(p in parts for p in ("conv1", "class_embedding", "positional_embedding", "ln_pre")):
        depth = 0
    else:
        depth = layers + 1  # ln_post, proj
    return decay ** (layers + 1 - depth)


def make_optimizer(model: VLM, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW (0.9, 0.98, 1e-6) with weight decay on matrices only (nanoGPT's rule) and ViT layer decay."""
    layers = len(model.vision.visual.transformer.resblocks)
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = vit_lr_scale(name, layers, cfg.vit_layer_decay) if name.startswith("vision.") else 1.0
        decay = p.ndim >= 2
        group = groups.setdefault(
            (scale, decay), {"params": [], "lr_scale": scale, "weight_decay": cfg.weight_decay if decay else 0.0}
        )
        group["params"].append(p)
    return torch.optim.AdamW(list(groups.values()), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def get_lr(step: int, cfg: OptimConfig, total: int) -> float:
    """Linear warm-up to the peak, then cosine decay to min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def run_fingerprint(cfg: TrainConfig) -> str:
    """What a resumed run must share with the first one (not where output goes, nor logging/eval settings)."""
    data = to_dict(cfg)
    for key in ("output", "eval", "log_interval"):
        data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def prepare_run(cfg: TrainConfig, overwrite: bool, dist: Dist) -> Path | None:
    """The checkpoint to resume from (None = a fresh start); refuses an output dir of another config."""
    out = cfg.out_dir
    if dist.main:
        run_file = out / "run.json"
        if overwrite and out.exists():
            shutil.rmtree(out)
        elif run_file.exists() and json.loads(run_file.read_text())["config"] != run_fingerprint(cfg):
            raise ConfigError(f"{out} holds a training run of another config; use --out DIR or --overwrite")
        elif out.exists() and any(out.iterdir()) and not run_file.exists():
            raise ConfigError(f"{out} exists and is not a curate training run; choose another --out or --overwrite")
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(run_file, json.dumps({"config": run_fingerprint(cfg)}).encode())
        write_bytes_atomic(out / "config.yaml", to_yaml(cfg).encode())
    if dist.world > 1:
        torch_dist.barrier()
    checkpoints = sorted((out / "checkpoints").glob("step-*.pt"))
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(cfg: TrainConfig, model: VLM, optimizer: torch.optim.Optimizer, step: int, dist: Dist) -> Path:
    """step = the next step to run; the data position is the batches each process consumed."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "data": {"batches": step * cfg.grad_accum, "world": dist.world, "workers": cfg.data.workers},
        "config": to_dict(cfg),
        "rng": torch.get_rng_state(),
    }
    folder = cfg.out_dir / "checkpoints"
    path = folder / f"step-{step:07d}.pt"
    write_atomic(path, lambda tmp: torch.save(state, tmp))
    for old in sorted(folder.glob("step-*.pt"))[: -cfg.output.keep_checkpoints]:
        old.unlink()
    return path


def load_checkpoint(path: Path, model: VLM, optimizer: torch.optim.Optimizer, dist: Dist) -> tuple[int, int]:
    """(next step, batches consumed per process) from a checkpoint of this run."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["data"]["world"] != dist.world:
        raise ConfigError(
            f"{path} was written by {state['data']['world']} processes; resume with the same number "
            f"(now {dist.world}) so every process continues its own data stream"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return state["step"], state["data"]["batches"]


def init_weights(path: str, model: VLM) -> None:
    """Model weights of an earlier stage's checkpoint (Table 8: stage N starts from stage N-1)."""
    if not Path(path).is_file():
        raise ConfigError(f"init_from {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"] if "model" in state else state)


def make_data(cfg: TrainConfig, tok: Tokenizer, dist: Dist) -> tuple[RoleStream, Callable[[], Iterator[dict]]]:
    """(training stream, a function giving a fresh pass over the held-out items)."""
    collate = Collator(tok, cfg.model.adapter.n_queries, cfg.data.seq_len, cfg.image_size)
    common = {"batch_size": cfg.data.batch_size, "seed": cfg.seed, "rank": dist.rank, "world": dist.world}
    if cfg.stage == 3:
        items, skipped = sft_items(cfg.data.sft or "", cfg.data.image_sources)
        if skipped:
            log.warning("sft: %s conversations left out (image not in data.image_sources)", dict(skipped))
        held = [x for i, x in enumerate(items) if cfg.data.holdout_shards and i % SFT_HOLDOUT == SFT_HOLDOUT - 1]
        train = [x for x in items if x not in held]
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
    """One optimizer step over grad_accum micro-batches; returns loss, tokens, images and skipped samples."""
    losses, tokens, images, skipped = [], 0, 0, Counter()
    for micro in range(cfg.grad_accum):
        batch = next(batches)
        skipped.update(batch["skipped"])
        t = {k: v.to(run["device"], non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        last = micro == cfg.grad_accum - 1
        sync = contextlib.nullcontext() if last or run["dist"].world == 1 else model.no_sync()
        with sync, run["autocast"]():
            _, loss = model(
                t["input_ids"], t["segments"], t["positions"], images=t["images"], image_slots=t["image_slots"],
                labels=t["labels"],
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
    return {"loss": float(loss), "tokens": tokens * run["dist"].world, "images": images, "skipped": skipped}


def evaluate(model: VLM, tok: Tokenizer, cfg: TrainConfig, held: Callable[[], Iterator[dict]], run: dict) -> dict:
    """Per-task held-out loss and greedy-generation measures."""
    collate = Collator(tok, cfg.model.adapter.n_queries, cfg.data.seq_len, cfg.image_size)
    model.eval()
    batches = islice(eval_batches(held(), collate, cfg.data.batch_size), cfg.eval.batches)
    tasks: dict[str, dict] = task_losses(model, batches, run["device"], run["autocast"])
    samples: dict[str, list[dict]] = {}
    for item in held():
        group = samples.setdefault(item["task"], [])
        group += [s for s in item["samples"] if "prefix" in s][: cfg.eval.generate - len(group)]
    generated = generation_report(
        model, tok, {t: s for t, s in samples.items() if s}, n_queries=cfg.model.adapter.n_queries,
        image_size=cfg.image_size, max_new=cfg.eval.max_new_tokens, device=run["device"], autocast=run["autocast"],
    )  # fmt: skip
    model.train()
    for task, measures in generated.items():
        tasks.setdefault(task, {}).update(measures)
    return {"tasks": dict(sorted(tasks.items()))}


def log_line(step: int, result: dict[str, Any], lr: float, seconds: float) -> str:
    return (
        f"step {step} | loss {result['loss']:.4f} | lr {lr:.2e} | {seconds * 1000:.0f} ms | "
        f"{result['tokens'] / seconds / 1000:.1f}k tok/s | {result['images'] / seconds:.1f} img/s"
    )


def main(cfg: TrainConfig, *, overwrite: bool = False, stop_after: int | None = None) -> dict[str, Any]:
    """Train (or resume) the run of `cfg`; returns the summary written to summary.json."""
    dist = setup_distributed()
    device = resolve_device(cfg.device, dist)
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
    stream, held = make_data(cfg, tok, dist)
    stream.start_batches = consumed
    batches = iter(make_loader(stream, cfg.data.workers, pin_memory=device.startswith("cuda")))
    wrapped = model
    if dist.world > 1:
        ids = [dist.local_rank] if device.startswith("cuda") else None
        wrapped = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
    run = {"device": device, "autocast": autocast_for(cfg.precision, device), "dist": dist}
    metrics = MetricsLog(cfg.out_dir / "metrics.jsonl", keep_before=start, enabled=dist.main)
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    log.info("training %s: stage %d, steps %d..%d on %s x%d", cfg.name, cfg.stage, start, last - 1, device, dist.world)
    for step in range(start, last):
        lr = get_lr(step, cfg.optim, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        began = time.perf_counter()
        result = train_step(wrapped, batches, optimizer, cfg, run)
        seconds = time.perf_counter() - began
        metrics.add(step, result, lr, seconds)
        if dist.main and (step % cfg.log_interval == 0 or step == last - 1):
            log.info(log_line(step, result, lr, seconds))
        done = step + 1
        if dist.main and (done % cfg.output.checkpoint_every == 0 or done == last):
            save_checkpoint(cfg, model, optimizer, done, dist)
        if dist.main and cfg.eval.every and done % cfg.eval.every == 0 and done < cfg.steps:
            write_report(cfg, evaluate(model, tok, cfg, held, run), done, final=False)
    if dist.world > 1:
        torch_dist.barrier()
    if last < cfg.steps:
        log.info("stopped after step %d of %d (checkpoint written); rerun to continue", last, cfg.steps)
        return metrics.summary(cfg, finished=False)
    summary = metrics.summary(cfg, finished=True)
    if dist.main:
        write_report(cfg, evaluate(model, tok, cfg, held, run), cfg.steps, final=True)
        write_bytes_atomic(cfg.out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


class MetricsLog:
    """metrics.jsonl: one line per step. A resumed run first drops lines of steps it will redo."""

    def __init__(self, path: Path, keep_before: int, enabled: bool) -> None:
        self.path, self.enabled = path, enabled
        self.rows: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a kill can cut the last line short
                    row = json.loads(line)
                    if row["step"] < keep_before:
                        self.rows.append(row)
        if enabled:
            write_bytes_atomic(path, "".join(json.dumps(r) + "\n" for r in self.rows).encode())
        self.skipped = Counter()

    def add(self, step: int, result: dict[str, Any], lr: float, seconds: float) -> None:
        self.skipped.update(result["skipped"])
        row = {"step": step, "loss": round(result["loss"], 6), "lr": lr, "seconds": round(seconds, 4)}
        row |= {"tokens": result["tokens"], "images": result["images"]}
        self.rows.append(row)
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def summary(self, cfg: TrainConfig, finished: bool) -> dict[str, Any]:
        losses = [r["loss"] for r in self.rows]
        tail = losses[-min(10, len(losses)) :] if losses else [float("nan")]
        first = losses[0] if losses else float("nan")
        seconds = sum(r["seconds"] for r in self.rows) or float("nan")
        return {
            "name": cfg.name,
            "stage": cfg.stage,
            "finished": finished,
            "steps": len(losses),
            "first_loss": first,
            "final_loss": round(sum(tail) / len(tail), 4),  # mean of the last 10 steps
            "loss_reduction": round(1 - (sum(tail) / len(tail)) / first, 4) if losses else None,
            "train_seconds": round(seconds, 1),
            "tokens_per_s": round(sum(r["tokens"] for r in self.rows) / seconds, 1),
            "skipped_samples": dict(self.skipped),
        }


def write_report(cfg: TrainConfig, report: dict[str, Any], step: int, final: bool) -> None:
    report = {"name": cfg.name, "stage": cfg.stage, "step": step, **report}
    name = "eval_report" if final else f"eval/step-{step:07d}"
    write_bytes_atomic(cfg.out_dir / f"{name}.json", json.dumps(report, indent=2, ensure_ascii=False).encode())
    write_bytes_atomic(cfg.out_dir / f"{name}.md", eval_markdown(report).encode())
    log.info("eval report -> %s.json", cfg.out_dir / name)
