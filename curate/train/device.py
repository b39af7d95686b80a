"""Where a training run executes: the torchrun process group, the device, and bf16 autocast where supported."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist

from curate.errors import ConfigError


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
