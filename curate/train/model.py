"""The reference Qwen-VL architecture at any size (QWENVL_FORMAT.md §5.1, §7): an open_clip ViT, one
position-aware cross-attention adapter with learnable queries, and a decoder LM whose `<img>` span slots are
overwritten by the adapter's outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    model: str = "curate-tiny-clip"  # an open_clip model name (or local-dir:…); its visual tower is used
    pretrained: str | None = None  # open_clip tag or local checkpoint; None = random init


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    n_queries: int = 256  # a square number: the queries sit on a grid for their 2D positions (§7: 16 x 16)
    heads: int = 8


@dataclass(frozen=True, kw_only=True)
class DecoderConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    rope_base: float = 10000.0


@dataclass(frozen=True, kw_only=True)
class VLMConfig:
    decoder: DecoderConfig
    vision: VisionConfig = field(default_factory=VisionConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)


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


class VisionEncoder(nn.Module):
    """open_clip's visual tower, returning patch tokens (B, N, width)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        import open_clip

        from curate.clip.models import check_weights, register_project_configs

        register_project_configs()
        if cfg.pretrained:
            check_weights(cfg.model, cfg.pretrained)
        clip = open_clip.create_model(cfg.model, pretrained=cfg.pretrained)
        self.visual = clip.visual
        self.visual.output_tokens = True
        self.width = self.visual.transformer.width
        self.grid = self.visual.grid_size[0]
        size = self.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, tokens = self.visual(images)
        return tokens  # (B, grid*grid, width)


class CrossAttnAdapter(nn.Module):
    """N learnable queries attend once to the ViT tokens; fixed 2D positions go on queries and keys, not values."""

    def __init__(self, kv_dim: int, kv_grid: int, out_dim: int, cfg: AdapterConfig) -> None:
        super().__init__()
        side = math.isqrt(cfg.n_queries)
        if side * side != cfg.n_queries:
            raise ValueError(f"adapter.n_queries must be a square number, got {cfg.n_queries}")
        dim = out_dim
        self.query = nn.Parameter(torch.empty(cfg.n_queries, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.register_buffer("pos_q", sincos_2d(dim, side), persistent=False)  # fixed, never trained
        self.register_buffer("pos_k", sincos_2d(dim, kv_grid), persistent=False)
        self.kv_proj = nn.Linear(kv_dim, dim, bias=False)
        self.ln_q = nn.LayerNorm(dim, eps=1e-6)
        self.ln_kv = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, cfg.heads, batch_first=True)
        self.ln_post = nn.LayerNorm(dim)
        self.proj = nn.Parameter(dim**-0.5 * torch.randn(dim, out_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.ln_kv(self.kv_proj(tokens))  # (B, N, D)
        q = (self.ln_q(self.query) + self.pos_q).unsqueeze(0).expand(x.shape[0], -1, -1)  # (B, Nq, D)
        out, _ = self.attn(q, x + self.pos_k, x, need_weights=False)  # positions on keys, not values
        return self.ln_post(out) @ self.proj  # (B, Nq, out_dim)


def rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary position embedding of (B, H, T, Dh) by per-token positions (B, T)."""
    half = x.shape[-1] // 2
    freqs = 1.0 / base ** (torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.float()[:, None, :, None] * freqs  # (B, 1, T, half)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.out = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.cfg.n_head
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))  # (B, H, T, Dh)
        q, k = rope(q, positions, self.cfg.rope_base), rope(k, positions, self.cfg.rope_base)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])  # mask (B, T, T): True = attend
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln_2(x))


def _init_weights(module: nn.Module) -> None:
    """GPT-2's init (std 0.02): PyTorch's default N(0, 1) embedding makes tied logits start huge."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class Decoder(nn.Module):
    """A small GPT with RoPE; attention is causal and, for packed sequences, blocked between samples."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.apply(_init_weights)

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = embeds
        for block in self.blocks:
            x = block(x, mask, positions)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab)


def attention_mask(segments: torch.Tensor) -> torch.Tensor:
    """(B, T, T) causal mask that also blocks attention across packed samples (segment ids per token; -1 = pad)."""
    t = segments.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]
    mask = causal[None] & same
    return mask | torch.eye(t, dtype=torch.bool, device=segments.device)[None]  # padding attends to itself


class VLM(nn.Module):
    """ViT -> adapter -> decoder; adapter outputs replace the embeddings of each image span's query slots."""

    def __init__(self, cfg: VLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg.vision)
        self.adapter = CrossAttnAdapter(self.vision.width, self.vision.grid, cfg.decoder.n_embd, cfg.adapter)
        self.decoder = Decoder(cfg.decoder)

    def embed(
        self, input_ids: torch.Tensor, images: torch.Tensor | None, image_slots: torch.Tensor | None
    ) -> torch.Tensor:
        """Token embeddings with image features written in: image_slots (n_images, 2) = (row, first slot)."""
        embeds = self.decoder.wte(input_ids)  # (B, T, D)
        if images is None or image_slots is None or len(image_slots) == 0:
            return embeds
        feats = self.adapter(self.vision(images))  # (n_images, Nq, D)
        n_q = feats.shape[1]
        rows = image_slots[:, 0].repeat_interleave(n_q)
        cols = (image_slots[:, 1:2] + torch.arange(n_q, device=input_ids.device)).reshape(-1)
        embeds = embeds.clone()
        embeds[rows, cols] = feats.reshape(-1, feats.shape[-1]).to(embeds.dtype)
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        segments: torch.Tensor,
        positions: torch.Tensor,
        *,
        images: torch.Tensor | None = None,
        image_slots: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, loss); labels are -100 where no loss applies; next-token targets are labels shifted by one."""
        logits = self.decoder(self.embed(input_ids, images, image_slots), attention_mask(segments), positions)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        return logits, loss
