"""One output dir = one training run (the run-folder lifecycle of curate.core.run_folder, identity = config + data
files): atomic checkpoints holding {model, optimizer, step, data position, config, rng}, the per-step metrics log
and the evaluation reports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist

from curate.commands.train.config import TrainConfig
from curate.core.atomic import write_atomic, write_bytes_atomic
from curate.core.config import to_dict, to_yaml
from curate.core.errors import ConfigError
from curate.core.run_folder import prepare
from curate.train.data import find_shards
from curate.train.device import Dist
from curate.train.model import VLM
from curate.train.report import eval_markdown

log = logging.getLogger(__name__)


def run_fingerprint(cfg: TrainConfig) -> str:
    """What a resumed run must share with the first one (not where output goes, nor logging/eval settings, nor
    whether the forward is compiled: the same computation, and runs from before the key keep their identity)."""
    data = to_dict(cfg)
    for key in ("output", "eval", "log_interval", "compile"):
        data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def data_signature(cfg: TrainConfig) -> str:
    """Names and sizes of the training data files: a resumed run must read the same data."""
    files = [cfg.data.sft or ""] if cfg.stage == 3 else find_shards(cfg.data.train) + find_shards(cfg.data.eval)
    listing = [(f, Path(f).stat().st_size if Path(f).is_file() else None) for f in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]


def prepare_run(cfg: TrainConfig, overwrite: bool, dist: Dist) -> Path | None:
    """The checkpoint to resume from (None = a fresh start); refuses an output dir of another config or data.
    Rank 0 prepares the run folder (curate.core.run_folder) while the others wait."""
    out = cfg.out_dir
    if dist.main:
        identity = {"config": run_fingerprint(cfg), "input": data_signature(cfg)}
        prepare(out, "train", identity, to_dict(cfg), to_yaml(cfg), overwrite=overwrite)
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
    saved = ((state.get("config") or {}).get("model") or {}) if isinstance(state, dict) else {}
    connector = saved.get("connector", model.cfg.connector)
    if connector in ("perceiver", "qformer", "mlp2x_gelu") and "adapter" in saved:
        # media_positions adds no parameters: a mismatch would load without complaint and compute something else
        was = saved["adapter"].get("media_positions", False)  # checkpoints before the setting had none
        if was != model.cfg.adapter.media_positions:
            raise ConfigError(
                f"init_from {path} was trained with model.adapter.media_positions={was}; set the same value"
            )
    model.load_state_dict(state["model"] if "model" in state else state)


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
        row |= {"tokens": result["tokens"], "images": result["images"], "data_s": round(result["data_s"], 4)}
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
            "data_wait_share": data_wait_share(self.rows),
            "skipped_samples": dict(self.skipped),
        }


def data_wait_share(rows: list[dict[str, Any]]) -> float | None:
    """Seconds waiting for batches / step seconds, over the steps that recorded it (metrics lines before issue 20
    have no `data_s`); None when none did."""
    timed = [r for r in rows if "data_s" in r]
    seconds = sum(r["seconds"] for r in timed)
    return round(sum(r["data_s"] for r in timed) / seconds, 4) if timed and seconds else None


def write_report(cfg: TrainConfig, report: dict[str, Any], step: int, final: bool) -> None:
    report = {"name": cfg.name, "stage": cfg.stage, "step": step, **report}
    name = "eval_report" if final else f"eval/step-{step:07d}"
    write_bytes_atomic(cfg.out_dir / f"{name}.json", json.dumps(report, indent=2, ensure_ascii=False).encode())
    write_bytes_atomic(cfg.out_dir / f"{name}.md", eval_markdown(report).encode())
    log.info("eval report -> %s.json", cfg.out_dir / name)
