"""Where a training run executes: the torchrun process group, the device, and bf16 autocast where supported."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist

from curate.core.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> tuple[Dist, str]:
    """torchrun's environment -> (process group, this process's device). The device is resolved first and picks
    the backend: NCCL for CUDA tensors, gloo for CPU ones. A plain run is one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world > 1 and not torch_dist.is_initialized():
        # a long evaluation on rank 0 keeps the others waiting at a barrier: allow an hour, not the default 10 min
        backend = "nccl" if resolved.startswith("cuda") else "gloo"
        torch_dist.init_process_group(backend, timeout=datetime.timedelta(hours=1))
    if world == 1:
        return Dist(), resolved
    return Dist(torch_dist.get_rank(), world, local_rank), resolved


def resolve_device(name: str, local_rank: int = 0) -> str:
    """cpu, or cuda:<local rank>; `auto` takes CUDA when there is a GPU for this process."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "cuda" and not available:
        raise ConfigError("device: cuda was asked for but no CUDA device is available; use auto or cpu")
    if name == "cpu" or not available:
        return "cpu"
    if local_rank >= available:
        raise ConfigError(
            f"process {local_rank} has no GPU ({available} visible): start at most {available} processes per node "
            "(torchrun --nproc_per_node) or set device: cpu"
        )
    torch.cuda.set_device(local_rank)
    return f"cuda:{local_rank}"


def autocast_for(precision: str, device: str) -> Callable[[], Any]:
    """bf16 autocast on devices that support it ('auto'), or as asked; fp32 otherwise."""
    kind = device.split(":")[0]
    bf16 = precision == "bf16" or (precision == "auto" and kind == "cuda" and torch.cuda.is_bf16_supported())
    return lambda: torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16)
