"""SparseVLM (Zhang et al. 2024; code: Gumpest/SparseVLMs, v1): training-free pruning of visual tokens inside the
decoder, with text tokens as raters (issue 19). For evaluation and generation of the built-in decoder, one sample
at a time.

- **Raters**, once, from the layer-0 hidden states (the input embeddings): M = softmax over the text tokens of
  (visual · textᵀ), averaged over the visual tokens; the raters are the text tokens scoring above the mean.
  "Text" is every token after the image span, as in the reference code.
- **Pruning** after each scheduled layer: that layer's attention probabilities (causal, after RoPE), averaged
  over heads and over the raters' rows, score the visual tokens; the top `keep` stay, in their order. The
  prefix before the image (system, `<img>`) and every text token are never dropped.
- **Recycling** (optional): of the pruned tokens, the top 30% (+1) by rater score are clustered with DPC-KNN
  (int(n / 10) + 1 clusters; k of the kNN density = the cluster count; δ = distance to the nearest denser
  token; centres = top δ · density) and each cluster's mean is placed right after the kept visual tokens.
- **Positions** are renumbered contiguously after every pruning (v1), so a decoding step sees what a KV cache
  of the pruned layers would give it.
- **Schedule**: the published LLaVA-1.5 schedule keeps [300, 200, 110] of 576 visual tokens after layers 2, 6
  and 15 of 32 (its "192 tokens" setting). Scaled to a decoder of L layers and N visual tokens at keep ratio ρ:
  after layers round(2L/32), round(6L/32), round(15L/32) (moved later where two coincide), keep
  round(N · f · 3ρ) with f = [300, 200, 110] / 576, so ρ = 1/3 is the published fractions; at least 1, never
  more than the tokens left. ρ = 1 prunes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from curate.core.errors import ConfigError

PUBLISHED_LAYERS = (2, 6, 15)  # 0-indexed layers of LLaVA-1.5's 32 (SparseVLM score.py, layer_dict)
PUBLISHED_DEPTH = 32
PUBLISHED_KEEP = (300, 200, 110)  # of 576 visual tokens: the "192 tokens" setting (sparse_token_list_192)
PUBLISHED_TOKENS = 576
PUBLISHED_RATIO = 192 / 576
RECYCLE_SHARE = 0.3  # top 30% of the pruned tokens are recycled (modelling_sparse_llama.py)
TOKENS_PER_CLUSTER = 10  # cluster_num = int(recycled / 10) + 1


@dataclass(frozen=True, kw_only=True)
class SparseConfig:
    """`eval.sparse`: keep ratios to evaluate (1.0 = unpruned) and whether to also evaluate with recycling."""

    keep_ratios: tuple[float, ...] = ()
    recycle: tuple[bool, ...] = (False,)

    def __post_init__(self) -> None:
        if any(not 0 < r <= 1 for r in self.keep_ratios):
            raise ConfigError("eval.sparse.keep_ratios must lie in (0, 1]")
        if not self.recycle:
            raise ConfigError("eval.sparse.recycle lists false and/or true")


@dataclass
class Step:
    layer: int  # prune after this layer (0-indexed)
    keep: int


@dataclass
class Plan:
    """What a prefill decided, reused by every decoding step: raters, then per pruning layer the kept visual
    positions (into the visual tokens at that layer) and the recycled clusters (lists of pruned positions)."""

    raters: torch.Tensor  # indexes into the text tokens
    kept: list[torch.Tensor] = field(default_factory=list)
    clusters: list[list[torch.Tensor]] = field(default_factory=list)


def schedule(layers: int, visual: int, ratio: float) -> list[Step]:
    """The scaled keep schedule (module docstring); empty at ratio 1."""
    if ratio >= 1:
        return []
    steps, last, left = [], -1, visual
    for at, keep in zip(PUBLISHED_LAYERS, PUBLISHED_KEEP, strict=True):
        layer = max(round(at * layers / PUBLISHED_DEPTH), last + 1)
        if layer >= layers - 1:  # pruning after the last layer changes nothing
            break
        count = min(left, max(1, round(visual * keep / PUBLISHED_TOKENS * ratio / PUBLISHED_RATIO)))
        steps.append(Step(layer, count))
        last, left = layer, count
    return steps


def select_raters(hidden: torch.Tensor, vis: slice, text_start: int) -> torch.Tensor:
    """Text-token indexes (from text_start) whose visual-averaged softmax score is above the mean."""
    v, t = hidden[vis], hidden[text_start:]
    scores = (v @ t.T).float().softmax(dim=1).mean(dim=0)  # (n_text,)
    return torch.nonzero(scores > scores.mean()).flatten()


def cluster_and_merge(x: torch.Tensor, clusters: int) -> list[torch.Tensor]:
    """DPC-KNN as SparseVLM's `cluster_and_merge` (x: (N, C)): the member indexes of each of `clusters` clusters,
    in centre order. Ties in density are broken by index (the reference adds 1e-6 noise)."""
    n, c = x.shape
    dist = torch.cdist(x.double()[None], x.double()[None])[0] / math.sqrt(c)  # float64: ties below float32's eps
    k = min(clusters, n)
    nearest = dist.topk(k, dim=-1, largest=False).values  # includes the token itself
    density = (-(nearest**2).mean(dim=-1)).exp() + torch.arange(n, device=x.device, dtype=torch.float64) * 1e-12
    denser = density[None, :] > density[:, None]  # [i, j]: j is denser than i
    delta = torch.where(denser, dist, dist.max()).min(dim=-1).values
    centres = (delta * density).topk(min(clusters, n)).indices
    assign = dist[centres].argmin(dim=0)  # each token to its nearest centre
    assign[centres] = torch.arange(len(centres), device=x.device)
    return [torch.nonzero(assign == i).flatten() for i in range(len(centres))]


def rater_attention(
    block: torch.nn.Module, x: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """(len(rows), T) attention probabilities of the given query rows in `block` (a curate.train.model.Block),
    averaged over heads: softmax(q kᵀ / √d + causal) after RoPE, as the block computes them."""
    from curate.train.model import rope

    t, d = x.shape
    h = block.cfg.n_head
    q, k, _ = block.qkv(block.ln_1(x[None])).split(d, dim=2)
    q, k = (z.view(1, t, h, d // h).transpose(1, 2) for z in (q, k))
    q, k = rope(q, positions[None], block.cfg.rope_base), rope(k, positions[None], block.cfg.rope_base)
    scores = (q[:, :, rows] @ k.transpose(-1, -2)).float() / math.sqrt(d // h)  # (1, H, R, T)
    causal = torch.arange(t, device=x.device)[None, :] > rows[:, None]
    return scores.masked_fill(causal, float("-inf")).softmax(dim=-1).mean(dim=1)[0]


def pruned_forward(
    decoder: torch.nn.Module,
    embeds: torch.Tensor,
    vis: slice,
    steps: list[Step],
    *,
    recycle: bool,
    plan: Plan | None = None,
) -> tuple[torch.Tensor, Plan, list[int]]:
    """Logits (T', vocab) of one sample (embeds (T, D), the visual tokens at `vis`, text after them) through the
    built-in decoder with SparseVLM pruning; the plan (computed when None, else reused) and the sequence length
    each layer saw. The returned logits cover the tokens left after the last pruning: the text tokens keep their
    order at the end, so logits[-k:] are the last k text positions."""
    if not hasattr(decoder, "blocks"):
        raise ConfigError("SparseVLM pruning needs the built-in decoder (not decoder.hf_path)")
    x = embeds
    start, count = vis.start, vis.stop - vis.start
    text_start = vis.stop
    if plan is None:
        plan = Plan(raters=select_raters(x, vis, text_start))
        fresh = True
    else:
        fresh = False
    lengths = []
    at = {s.layer: (i, s.keep) for i, s in enumerate(steps)}
    for layer, block in enumerate(decoder.blocks):
        t = x.shape[0]
        positions = torch.arange(t, device=x.device)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        out = block(x[None], mask[None], positions[None])[0]
        lengths.append(t)
        if layer in at:
            i, keep = at[layer]
            if fresh:
                rows = plan.raters + text_start
                attn = rater_attention(block, x, positions, rows).mean(dim=0)[start : start + count]
                kept = attn.topk(min(keep, count)).indices.sort().values
                clusters: list[torch.Tensor] = []
                if recycle:
                    pruned = torch.ones(count, dtype=torch.bool, device=x.device)
                    pruned[kept] = False
                    pruned_idx = torch.nonzero(pruned).flatten()
                    if len(pruned_idx):
                        take = int(len(pruned_idx) * RECYCLE_SHARE) + 1
                        chosen = pruned_idx[attn[pruned_idx].topk(min(take, len(pruned_idx))).indices]
                        n_clusters = int(len(chosen) / TOKENS_PER_CLUSTER) + 1
                        groups = cluster_and_merge(out[start + chosen], n_clusters)
                        clusters = [chosen[g] for g in groups]
                plan.kept.append(kept)
                plan.clusters.append(clusters)
            kept, clusters = plan.kept[i], plan.clusters[i]
            merged = [out[start + g].mean(dim=0, keepdim=True) for g in clusters]
            parts = [out[:start], out[start + kept], *merged, out[text_start:]]
            x = torch.cat(parts)
            count = len(kept) + len(merged)
            text_start = start + count
        else:
            x = out
    return decoder.lm_head(decoder.ln_f(x)), plan, lengths


def decoder_flops(lengths: list[int], n_embd: int, vocab: int) -> int:
    """Forward FLOPs of the decoder for one sample, from the sequence length each layer saw: per layer
    24·T·d² (QKV, output and a 4x MLP) + 2·T²·d (causal QKᵀ and AV), then the LM head 2·T·d·V."""
    d = n_embd
    return int(sum(24 * t * d * d + 2 * t * t * d for t in lengths) + 2 * lengths[-1] * d * vocab)
