"""Optimizer and schedule of the reference loop (paper Table 8): AdamW (0.9, 0.98, eps 1e-6), weight decay on
matrices only, ViT layer-wise LR decay, linear warm-up then cosine decay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from curate.core.errors import ConfigError
from curate.train.model import VLM


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """AdamW with cosine decay after a linear warm-up (paper Table 8)."""

    lr: float = 5e-5  # peak
    min_lr: float = 1e-5
    warmup_steps: int = 400
    weight_decay: float = 0.05
    betas: tuple[float, ...] = (0.9, 0.98)
    eps: float = 1e-6
    grad_clip: float = 1.0
    vit_layer_decay: float = 0.95  # ViT layer-wise LR decay (Table 8); 1.0 = off

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr or self.warmup_steps < 0:
            raise ConfigError("optim: lr > 0, 0 <= min_lr <= lr, warmup_steps >= 0")
        if len(self.betas) != 2 or not 0 < self.vit_layer_decay <= 1:
            raise ConfigError("optim: betas is [beta1, beta2]; vit_layer_decay within (0, 1]")


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
    # The fused kernel (one launch for every tensor, issue 20) where every parameter is on a GPU; the same update.
    fused = all(p.is_cuda for group in groups.values() for p in group["params"])
    return torch.optim.AdamW(list(groups.values()), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused)


def get_lr(step: int, cfg: OptimConfig, total: int) -> float:
    """Linear warm-up to the peak, then cosine decay to min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))
