"""The reference Qwen-VL architecture at any size (QWENVL_FORMAT.md §5.1, §7): an open_clip ViT, a connector
(Qwen-VL's position-aware cross-attention adapter by default; LLaVA's MLP, Flamingo's perceiver or BLIP-2's
Q-Former, curate/train/connectors.py), and a decoder LM whose `<img>` span slots are overwritten by the
connector's outputs.

Under the `deepseek_vl2` image plan (issue 18) the adapter gives way to DeepSeek-VL2's connector: the ViT runs
on the thumbnail and on every local tile, each view's grid goes through a 2 x 2 unfold and an MLP, and learned
newline and view-separator embeddings lay the tokens out as curate.format.image_plan counts them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from curate.core.errors import ConfigError
from curate.train.connectors import CONNECTORS, AdapterConfig, TileConnector, image_tokens, make_connector, resize_grid


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    model: str = "curate-tiny-clip"  # an open_clip model name (or local-dir:…); its visual tower is used
    pretrained: str | None = None  # open_clip tag or local checkpoint; None = random init


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
    connector: str = "qwen_resampler"  # one of connectors.CONNECTORS (the qwen_vl plan only)


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
            if cfg.connector != CONNECTORS[0]:
                raise ConfigError(f"image_plan deepseek_vl2 brings its own connector; model.connector {cfg.connector}")
            self.connector = TileConnector(self.vision.width, self.decoder.n_embd)
        elif cfg.plan == "qwen_vl":  # the attribute keeps the name `adapter`: checkpoints of issue 6 still load
            self.adapter = make_connector(cfg.connector, self.vision.width, self.decoder.n_embd, cfg.adapter)
        else:
            raise ConfigError(f"image plan {cfg.plan!r} is not valid; valid: qwen_vl, deepseek_vl2")

    def image_tokens(self, image_size: int) -> int:
        """Slots one image fills under the qwen_vl plan at `image_size` px (the MLP keeps one token per patch)."""
        return image_tokens(self.cfg.connector, (image_size // self.vision.patch) ** 2, self.cfg.adapter)

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
        feats = self.adapter(self.vision(images))  # (n_images, image tokens, D)
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
