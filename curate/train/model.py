"""The reference Qwen-VL architecture at any size (QWENVL_FORMAT.md §5.1, §7): an open_clip ViT, one
position-aware cross-attention adapter with learnable queries, and a decoder LM whose `<img>` span slots are
overwritten by the adapter's outputs.

Under the `deepseek_vl2` image plan (issue 18) the adapter gives way to DeepSeek-VL2's connector: the ViT runs
on the thumbnail and on every local tile, each view's grid goes through a 2 x 2 unfold and an MLP, and learned
newline and view-separator embeddings lay the tokens out as curate.format.image_plan counts them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from curate.core.errors import ConfigError


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
    vocab_size: int = 0  # 0 = the tokenizer's size (filled in when the model is built)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    rope_base: float = 10000.0
    hf_path: str | None = None  # a local Hugging Face causal LM folder instead of the built-in GPT


@dataclass(frozen=True, kw_only=True)
class VLMConfig:
    decoder: DecoderConfig
    vision: VisionConfig = field(default_factory=VisionConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    plan: str = "qwen_vl"  # the image plan (curate.format.image_plan.PLANS): qwen_vl adapter or deepseek_vl2 tiles


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


def resize_grid(table: torch.Tensor, side: int) -> torch.Tensor:
    """A (n*n, D) position table bicubically resized to (side*side, D): Qwen-VL's get_abs_pos (§7)."""
    n = math.isqrt(table.shape[0])
    if n == side:
        return table
    grid = table.reshape(1, n, n, -1).permute(0, 3, 1, 2).float()  # (1, D, n, n)
    grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(side * side, -1).to(table.dtype)


class VisionEncoder(nn.Module):
    """open_clip's ViT tower, returning patch tokens (B, N, width) at any square resolution: the learned
    position grid is bicubically resized to the input, as Qwen-VL runs its 224 px ViT at 448 px (§2.2, §7)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        import open_clip

        from curate.clip.models import check_weights, register_project_configs

        register_project_configs()
        if cfg.pretrained:
            check_weights(cfg.model, cfg.pretrained)
        clip = open_clip.create_model(cfg.model, pretrained=cfg.pretrained)
        if not hasattr(clip.visual, "conv1") or not hasattr(clip.visual, "class_embedding"):
            raise ConfigError(f"vision.model {cfg.model} is not an open_clip ViT (conv1 patches + class token)")
        self.visual = clip.visual
        self.width = self.visual.transformer.width
        self.patch = self.visual.patch_size[0]
        size = self.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        v = self.visual
        x = v.conv1(images)  # (B, width, g, g)
        b, _, side, _ = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, g*g, width)
        cls = v.class_embedding.to(x.dtype).expand(b, 1, -1)
        pos = v.positional_embedding
        x = torch.cat([cls, x], dim=1) + torch.cat([pos[:1], resize_grid(pos[1:], side)]).to(x.dtype)
        x = v.ln_post(v.transformer(v.ln_pre(v.patch_dropout(x))))  # (B, 1 + g*g, width)
        return x[:, 1:]  # patch tokens, no class token (Qwen-VL's ViT has none, §7)


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
        if cfg.n_embd % cfg.n_head or (cfg.n_embd // cfg.n_head) % 2:
            raise ConfigError(f"decoder.n_embd ({cfg.n_embd}) must split into n_head ({cfg.n_head}) even-sized heads")
        self.n_embd = cfg.n_embd
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


class HfDecoder(nn.Module):
    """Any Hugging Face causal LM from a local folder, behind the built-in decoder's interface: embeddings in,
    logits out, our (B, T, T) mask passed as a 4D additive mask so packed samples stay blocked."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        path = cfg.hf_path or ""
        if not Path(path, "config.json").is_file():
            raise ConfigError(f"decoder.hf_path {path!r} is not a local Hugging Face model folder (no config.json)")
        from transformers import AutoModelForCausalLM

        self.lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        if self.lm.get_input_embeddings().num_embeddings < cfg.vocab_size:  # room for the added special tokens
            self.lm.resize_token_embeddings(cfg.vocab_size)
        self.wte = self.lm.get_input_embeddings()
        self.n_embd = self.lm.config.hidden_size

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        bias = torch.zeros(mask.shape, dtype=embeds.dtype, device=embeds.device)
        bias = bias.masked_fill(~mask, torch.finfo(embeds.dtype).min)[:, None]  # (B, 1, T, T)
        out = self.lm(inputs_embeds=embeds, attention_mask=bias, position_ids=positions, use_cache=False)
        return out.logits  # (B, T, vocab)


def next_token_targets(labels: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """(B, T-1) targets of positions 0..T-2: the next label, or -100 where the next token starts another packed
    sample (attention is blocked there, so that token is not predictable from this sample)."""
    targets = labels[:, 1:].clone()
    targets[segments[:, 1:] != segments[:, :-1]] = -100
    return targets


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
        if cfg.decoder.vocab_size < 1:
            raise ConfigError("decoder.vocab_size must be set (the tokenizer's size)")
        self.vision = VisionEncoder(cfg.vision)
        self.decoder = HfDecoder(cfg.decoder) if cfg.decoder.hf_path else Decoder(cfg.decoder)
        if cfg.plan == "deepseek_vl2":
            self.connector = TileConnector(self.vision.width, self.decoder.n_embd)
        elif cfg.plan == "qwen_vl":
            self.adapter = CrossAttnAdapter(self.vision.width, self.decoder.n_embd, cfg.adapter)
        else:
            raise ConfigError(f"image plan {cfg.plan!r} is not valid; valid: qwen_vl, deepseek_vl2")

    def embed(
        self,
        input_ids: torch.Tensor,
        images: torch.Tensor | None,
        image_slots: torch.Tensor | None,
        image_grids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with image features written in: image_slots (n_images, 2) = (row, first slot);
        under deepseek_vl2, image_grids (n_images, 2) = [columns, rows] and `images` holds every view."""
        embeds = self.decoder.wte(input_ids)  # (B, T, D)
        if images is None or image_slots is None or len(image_slots) == 0:
            return embeds
        if self.cfg.plan == "deepseek_vl2":
            if image_grids is None:
                raise ValueError("the deepseek_vl2 plan needs image_grids")
            per_image = self.connector(self.vision(images), image_grids)
            counts = torch.tensor([len(t) for t in per_image], device=input_ids.device)
            rows = image_slots[:, 0].repeat_interleave(counts)
            starts = image_slots[:, 1].repeat_interleave(counts)
            firsts = torch.cumsum(counts, 0) - counts
            cols = starts + torch.arange(int(counts.sum()), device=input_ids.device) - firsts.repeat_interleave(counts)
            embeds = embeds.clone()
            embeds[rows, cols] = torch.cat(per_image).to(embeds.dtype)
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
        image_grids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, loss); labels are -100 where no loss applies; next-token targets are labels shifted by one."""
        embeds = self.embed(input_ids, images, image_slots, image_grids)
        logits = self.decoder(embeds, attention_mask(segments), positions)
        loss = None
        if labels is not None:
            targets = next_token_targets(labels, segments).reshape(-1)
            total = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets, ignore_index=-100, reduction="sum"
            )
            loss = total / (targets != -100).sum().clamp(min=1)  # a batch without target tokens gives 0, not NaN
        return logits, loss
