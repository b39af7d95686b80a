"""Connectors (issues 6, 18, 19): what turns the ViT's patch tokens into the decoder's image tokens.

- `qwen_resampler` (`CrossAttnAdapter`): Qwen-VL's one cross-attention layer with learnable queries and fixed 2D
  sin-cos positions on queries and keys (QWENVL_FORMAT.md §7).
- `mlp2x_gelu`: LLaVA-1.5's projector, Linear -> GELU -> Linear on every patch: one token per patch.
- `perceiver`: Flamingo's perceiver resampler (Alayrac et al. 2022, sec. 2.1 and Fig. 5): learned latents attend
  to concat(media, latents), `depth` layers of attention + feed-forward with LayerNorms, a final LayerNorm.
- `qformer`: BLIP-2's Q-Former shape (Li et al. 2023, sec. 3.1): learned queries, BERT-style post-LN blocks of
  self-attention, cross-attention to the image in every second block, feed-forward; then a projection to the
  decoder width. Random init: BERT weights cannot be had offline.
- `TileConnector`: DeepSeek-VL2's 2 x 2-unfold MLP with newline and view-separator embeddings (image plan
  `deepseek_vl2`, issue 18).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from curate.core.errors import ConfigError

CONNECTORS = ("qwen_resampler", "mlp2x_gelu", "perceiver", "qformer")


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    n_queries: int = 256  # a square number: the queries sit on a grid for their 2D positions (§7: 16 x 16)
    heads: int = 8
    depth: int = 2  # perceiver: layers; qformer: blocks (cross-attention in every second one)
    # Fixed 2D sin-cos positions added to the ViT tokens of the perceiver, the Q-Former and the MLP; false: the
    # reference designs exactly (they rely on the ViT's own learned positions). The Qwen resampler always has
    # its own, on keys. Why on by default: README "Connectors and pruning as measured" (issue 19).
    media_positions: bool = True

    def __post_init__(self) -> None:
        if self.n_queries < 1 or self.heads < 1 or self.depth < 1:
            raise ConfigError("adapter: n_queries, heads and depth must be >= 1")


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2D sin-cos positions (grid*grid, dim), MAE recipe: half the channels per axis (§7)."""
    if dim % 4:
        raise ValueError(f"2D sin-cos positions need a dimension divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    coords = torch.arange(grid, dtype=torch.float64)
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")  # "w goes first" in the channel halves

    def axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([axis(gx), axis(gy)], dim=1).float()


def grid_positions(tokens: torch.Tensor) -> torch.Tensor:
    """Fixed 2D sin-cos positions (N, C) for (B, N, C) tokens on a square patch grid, in their dtype and device."""
    side = math.isqrt(tokens.shape[1])
    if side * side != tokens.shape[1]:
        raise ValueError(f"{tokens.shape[1]} image tokens do not form a square grid")
    return sincos_2d(tokens.shape[-1], side).to(tokens.device, tokens.dtype)


def resize_grid(table: torch.Tensor, side: int) -> torch.Tensor:
    """A (n*n, D) position table bicubically resized to (side*side, D): Qwen-VL's get_abs_pos (§7)."""
    n = math.isqrt(table.shape[0])
    if n == side:
        return table
    grid = table.reshape(1, n, n, -1).permute(0, 3, 1, 2).float()  # (1, D, n, n)
    grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(side * side, -1).to(table.dtype)


class CrossAttnAdapter(nn.Module):
    """N learnable queries attend once to the ViT tokens; fixed 2D positions go on queries and keys, not values.

    The query grid's sin-cos table is the one fixed table; keys get it resized to their own grid (§7:
    `attn(q + pos_embed, x + get_abs_pos(pos_embed, len(x)), x)`), so query (i, j) and the patches it covers share
    a position whatever the image resolution.
    """

    def __init__(self, kv_dim: int, out_dim: int, cfg: AdapterConfig) -> None:
        super().__init__()
        side = math.isqrt(cfg.n_queries)
        if side * side != cfg.n_queries:
            raise ConfigError(f"adapter.n_queries must be a square number, got {cfg.n_queries}")
        if out_dim % cfg.heads:
            raise ConfigError(f"adapter.heads ({cfg.heads}) must divide the decoder width {out_dim}")
        dim = out_dim
        self.query = nn.Parameter(torch.empty(cfg.n_queries, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.register_buffer("pos", sincos_2d(dim, side), persistent=False)  # fixed, never trained
        self.kv_proj = nn.Linear(kv_dim, dim, bias=False)
        self.ln_q = nn.LayerNorm(dim, eps=1e-6)
        self.ln_kv = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, cfg.heads, batch_first=True)
        self.ln_post = nn.LayerNorm(dim)
        self.proj = nn.Parameter(dim**-0.5 * torch.randn(dim, out_dim))

    def key_positions(self, n_tokens: int) -> torch.Tensor:
        side = math.isqrt(n_tokens)
        assert side * side == n_tokens, "ViT tokens must form a square grid"
        return resize_grid(self.pos, side)  # (n_tokens, D)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.ln_kv(self.kv_proj(tokens))  # (B, N, D)
        q = (self.ln_q(self.query) + self.pos).unsqueeze(0).expand(x.shape[0], -1, -1)  # (B, Nq, D)
        keys = x + self.key_positions(x.shape[1]).to(x.dtype)
        out, _ = self.attn(q, keys, x, need_weights=False)  # positions on keys, not values
        return self.ln_post(out) @ self.proj  # (B, Nq, out_dim)


class TileConnector(nn.Module):
    """DeepSeek-VL2's connector (`downsample_mlp_gelu`, Wu et al. 2024 sec. 2.1): each view's patch grid is padded
    to an even side, unfolded 2 x 2 (4 x width channels per token) and projected by Linear-GELU-Linear; a learned
    newline ends every row and a learned separator sits between the global view and the local tiles."""

    def __init__(self, vit_width: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * vit_width, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        std = out_dim**-0.5  # DeepSeek-VL2 draws both embeddings as randn * 1/sqrt(n_embed)
        self.newline = nn.Parameter(torch.randn(out_dim) * std)
        self.separator = nn.Parameter(torch.randn(out_dim) * std)

    def view_grids(self, tokens: torch.Tensor) -> torch.Tensor:
        """(V, g*g, C) ViT tokens -> (V, s, s, D) with s = ceil(g / 2)."""
        v, n, c = tokens.shape
        g = math.isqrt(n)
        x = tokens.transpose(1, 2).reshape(v, c, g, g)
        x = F.pad(x, (0, g % 2, 0, g % 2))  # 27 x 27 -> 28 x 28, zeros (DeepSeek-VL2's constant pad)
        x = F.unfold(x, kernel_size=2, stride=2).transpose(1, 2)  # (V, s*s, 4C)
        side = (g + g % 2) // 2
        return self.mlp(x).reshape(v, side, side, -1)

    def forward(self, tokens: torch.Tensor, grids: torch.Tensor) -> list[torch.Tensor]:
        """Per image (grids: [columns, rows] each, views in order: thumbnail, then tiles row-major), its tokens:
        s rows of (s + newline), the separator, then (rows * s) rows of (columns * s + newline)."""
        views = self.view_grids(tokens)
        side, dim = views.shape[1], views.shape[-1]
        out, at = [], 0
        for columns, rows in grids.tolist():
            local = views[at + 1 : at + 1 + columns * rows]
            glob = torch.cat([views[at], self.newline.expand(side, 1, dim).to(views.dtype)], dim=1)
            local = local.reshape(rows, columns, side, side, dim).permute(0, 2, 1, 3, 4)
            local = local.reshape(rows * side, columns * side, dim)
            local = torch.cat([local, self.newline.expand(rows * side, 1, dim).to(views.dtype)], dim=1)
            separator = self.separator[None].to(views.dtype)
            out.append(torch.cat([glob.reshape(-1, dim), separator, local.reshape(-1, dim)]))
            at += 1 + columns * rows
        if at != len(views):
            raise ValueError(f"{len(views)} views for grids that need {at}")
        return out


class MlpProjector(nn.Module):
    """LLaVA-1.5's `mlp2x_gelu` (Liu et al. 2023, "Improved Baselines", sec. 3.2): Linear -> GELU -> Linear on every
    patch token; one output token per patch, so the image costs as many tokens as the ViT has patches."""

    def __init__(self, kv_dim: int, out_dim: int, positions: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(kv_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.positions = positions

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.positions:
            tokens = tokens + grid_positions(tokens)
        return self.net(tokens)  # (B, N, out_dim)


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))


class PerceiverLayer(nn.Module):
    """One perceiver-resampler layer: latents attend to concat(media, latents) (Flamingo Fig. 5:
    `kv = concat([x_f, x])`), then a feed-forward; both residual, LayerNorm on media and latents before."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = feed_forward(dim)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        q = self.norm_latents(latents)
        kv = torch.cat([self.norm_media(media), q], dim=1)
        latents = latents + self.attn(q, kv, kv, need_weights=False)[0]
        return latents + self.ff(latents)


class PerceiverResampler(nn.Module):
    """Flamingo's perceiver resampler: `n_queries` learned latents, `depth` layers, a final LayerNorm; media are
    first projected to the decoder width. Flamingo adds learned time embeddings to the media (one per frame); with
    `media_positions` a single image's patches get fixed 2D sin-cos positions the same way (added to the media, so
    to keys and values)."""

    def __init__(self, kv_dim: int, out_dim: int, cfg: AdapterConfig) -> None:
        super().__init__()
        if out_dim % cfg.heads:
            raise ConfigError(f"adapter.heads ({cfg.heads}) must divide the decoder width {out_dim}")
        self.latents = nn.Parameter(torch.randn(cfg.n_queries, out_dim) * 0.02)
        self.proj = nn.Linear(kv_dim, out_dim)
        self.positions = cfg.media_positions
        self.layers = nn.ModuleList(PerceiverLayer(out_dim, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        media = self.proj(tokens)
        if self.positions:
            media = media + grid_positions(media)
        x = self.latents.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            x = layer(media, x)
        return self.norm(x)  # (B, n_queries, out_dim)


class QFormerBlock(nn.Module):
    """A BERT-style (post-LN) block over the queries: self-attention, cross-attention to the image when `cross`,
    feed-forward."""

    def __init__(self, dim: int, kv_dim: int, heads: int, cross: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_self = nn.LayerNorm(dim, eps=1e-12)
        self.cross = nn.MultiheadAttention(dim, heads, kdim=kv_dim, vdim=kv_dim, batch_first=True) if cross else None
        self.norm_cross = nn.LayerNorm(dim, eps=1e-12) if cross else None
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.norm_ff = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, q: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        q = self.norm_self(q + self.self_attn(q, q, q, need_weights=False)[0])
        if self.cross is not None and self.norm_cross is not None:
            q = self.norm_cross(q + self.cross(q, image, image, need_weights=False)[0])
        return self.norm_ff(q + self.ff(q))


class QFormer(nn.Module):
    """BLIP-2's Q-Former shape at our size: `n_queries` learned queries through `depth` blocks, cross-attention to
    the (LayerNormed) image tokens in blocks 0, 2, 4, ... (`cross_attention_freq` 2), then a Linear to the decoder
    width (BLIP-2's language projection). Random init; no text branch (only the queries reach the decoder). The
    image tokens get fixed 2D sin-cos positions after their LayerNorm, as the perceiver's media do (BLIP-2 relies
    on its pretrained ViT's positions; ours starts from random init), with `media_positions`."""

    def __init__(self, kv_dim: int, out_dim: int, cfg: AdapterConfig) -> None:
        super().__init__()
        if out_dim % cfg.heads:
            raise ConfigError(f"adapter.heads ({cfg.heads}) must divide the decoder width {out_dim}")
        self.query = nn.Parameter(torch.randn(cfg.n_queries, out_dim) * 0.02)
        self.norm_query = nn.LayerNorm(out_dim, eps=1e-12)
        self.norm_image = nn.LayerNorm(kv_dim)
        self.positions = cfg.media_positions
        self.blocks = nn.ModuleList(QFormerBlock(out_dim, kv_dim, cfg.heads, i % 2 == 0) for i in range(cfg.depth))
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        image = self.norm_image(tokens)
        if self.positions:
            image = image + grid_positions(image)
        q = self.norm_query(self.query).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        for block in self.blocks:
            q = block(q, image)
        return self.proj(q)  # (B, n_queries, out_dim)


def make_connector(kind: str, kv_dim: int, out_dim: int, cfg: AdapterConfig) -> nn.Module:
    """The connector `kind` (one of CONNECTORS) from ViT width `kv_dim` to decoder width `out_dim`."""
    if kind == "qwen_resampler":
        return CrossAttnAdapter(kv_dim, out_dim, cfg)
    if kind == "mlp2x_gelu":
        return MlpProjector(kv_dim, out_dim, cfg.media_positions)
    if kind == "perceiver":
        return PerceiverResampler(kv_dim, out_dim, cfg)
    if kind == "qformer":
        return QFormer(kv_dim, out_dim, cfg)
    raise ConfigError(f"model.connector {kind!r} is not valid; valid: {', '.join(CONNECTORS)}")


def image_tokens(kind: str, patches: int, cfg: AdapterConfig) -> int:
    """Tokens one image costs the decoder through connector `kind` when the ViT gives `patches` patch tokens."""
    return patches if kind == "mlp2x_gelu" else cfg.n_queries
