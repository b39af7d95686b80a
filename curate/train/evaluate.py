"""Evaluation of the reference model on held-out data: per-task loss, greedy generation, box IoU for grounding
(against a predict-the-mean-box baseline), line exact-match for OCR, exact-match for the rest."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from curate.format import qwen
from curate.format.regions import regions
from curate.format.tokenizer import IGNORE, Encoded, Tokenizer
from curate.train.data import image_spans
from curate.train.model import VLM, attention_mask, next_token_targets
from curate.train.pixels import ImageInput
from curate.train.sparse import Plan, SparseConfig, decoder_flops, pruned_forward, schedule

N_EXAMPLES = 3  # generated examples kept in the report per task


def boxes(text: str) -> list[tuple[int, int, int, int]]:
    """Every `<box>(x1,y1),(x2,y2)</box>` in a text, as integer tuples in Qwen-VL's 0..999 space (§3.3)."""
    return [(*r.points[0], *r.points[1]) for r in regions(text) if r.kind == "box"]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 for empty or inverted boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) + max(b[2] - b[0], 0) * max(b[3] - b[1], 0) - inter
    return inter / union if union > 0 else 0.0


def line_match(predicted: str, target: str) -> tuple[int, int]:
    """(target OCR lines reproduced exactly, target lines): each predicted line can match one target line."""
    want = Counter(qwen.OCR_LINE.findall(target))
    got = Counter(qwen.OCR_LINE.findall(predicted))
    return sum((want & got).values()), sum(want.values())


@torch.no_grad()
def task_losses(model: VLM, batches: Iterable[dict[str, Any]], device: str, autocast: Any) -> dict[str, dict]:
    """Mean target-token loss per task over the batches (each row of a batch is one task's sequence)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for batch in batches:
        if not batch["tasks"]:
            continue
        t = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        with autocast():
            logits, _ = model(
                t["input_ids"], t["segments"], t["positions"], images=t["images"], image_slots=t["image_slots"],
                image_grids=t["image_grids"],
            )  # fmt: skip
        labels = next_token_targets(t["labels"], t["segments"])
        losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
        valid = labels != IGNORE
        for row, task in enumerate(batch["tasks"]):
            sums[task] += float(losses[row][valid[row]].sum())
            counts[task] += int(valid[row].sum())
    return {task: {"loss": round(sums[task] / max(counts[task], 1), 4), "tokens": counts[task]} for task in sums}


@torch.no_grad()
def greedy(
    model: VLM,
    prompts: list[Encoded],
    pixels: list[torch.Tensor],
    grids: list[list[int]],
    *,
    eos: int,
    max_new: int,
    device: str,
    autocast: Any,
) -> list[list[int]]:
    """Greedy continuations of left-padded prompts (pad slots attend only to themselves), until EOS."""
    longest = max(len(p.input_ids) for p in prompts)
    b = len(prompts)
    ids = torch.full((b, longest), eos, dtype=torch.long)
    segments = torch.full((b, longest), -1, dtype=torch.long)
    positions = torch.zeros((b, longest), dtype=torch.long)
    slots = []
    for i, p in enumerate(prompts):
        off = longest - len(p.input_ids)
        ids[i, off:], segments[i, off:] = torch.tensor(p.input_ids), 0
        positions[i, off:] = torch.arange(len(p.input_ids))
        slots += [(i, off + s) for s in p.slots]
    ids, segments, positions = ids.to(device), segments.to(device), positions.to(device)
    images = torch.stack(pixels).to(device) if pixels else None
    image_slots = torch.tensor(slots, dtype=torch.long, device=device).reshape(-1, 2)
    image_grids = torch.tensor(grids, dtype=torch.long, device=device).reshape(-1, 2)
    out: list[list[int]] = [[] for _ in prompts]
    done = torch.zeros(b, dtype=torch.bool, device=device)
    with autocast():
        embeds = model.embed(ids, images, image_slots, image_grids)  # (B, T, D): the ViT runs once per prompt
        for _ in range(max_new):
            nxt = model.decoder(embeds, attention_mask(segments), positions)[:, -1].argmax(-1)  # (B,)
            for i in (~done).nonzero().flatten().tolist():
                out[i].append(int(nxt[i]))
            done |= nxt == eos
            if bool(done.all()):
                break
            embeds = torch.cat([embeds, model.decoder.wte(nxt)[:, None].to(embeds.dtype)], dim=1)
            segments = torch.cat([segments, torch.zeros_like(segments[:, :1])], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
    return out


def generation_report(
    model: VLM,
    tok: Tokenizer,
    samples: dict[str, list[dict[str, Any]]],
    *,
    vision: ImageInput,
    max_new: int,
    device: str,
    autocast: Any,
) -> dict[str, dict]:
    """Greedy generation on held-out samples per task, scored by the task's measure."""
    report = {}
    for task, group in sorted(samples.items()):
        prompts, pixels, grids, kept = [], [], [], []
        for s in group:
            n = len(qwen.IMAGE_SPAN.findall(s["prefix"]))
            slots = vision.slots(s, n) if n <= len(s["image_bytes"]) else None
            if not s["prefix"] or slots is None or image_spans(s) > len(s["image_bytes"]):  # pure text: no prompt
                continue
            enc = tok.encode(s["prefix"], slots)
            try:
                decoded, image_grids = vision.pixels(s["image_bytes"][:n], vision.sizes(s, n))
            except Exception:  # noqa: BLE001 - an undecodable image leaves the sample out of the report
                continue
            pixels += decoded
            grids += image_grids
            prompts.append(enc)
            kept.append(s)
        if not prompts:
            continue
        outputs = greedy(model, prompts, pixels, grids, eos=tok.eos, max_new=max_new, device=device, autocast=autocast)
        texts = [tok.decode(o) for o in outputs]
        report[task] = score(task, [s["target"] for s in kept], texts)
        report[task]["examples"] = [
            {"prefix": s["prefix"], "target": s["target"], "generated": t}
            for s, t in zip(kept[:N_EXAMPLES], texts, strict=False)
        ]
    return report


def score(task: str, targets: list[str], generated: list[str]) -> dict[str, Any]:
    """Per-task measures: exact match always; mean IoU + mean-box baseline for boxes; OCR line exact-match."""
    result: dict[str, Any] = {
        "samples": len(targets),
        "exact_match": round(sum(g == t for g, t in zip(generated, targets, strict=True)) / len(targets), 4),
    }
    truth = [boxes(t) for t in targets]
    if any(truth):
        pairs = [(b[0], (boxes(g) or [None])[0]) for b, g in zip(truth, generated, strict=True) if b]
        mean_box = tuple(sum(t[k] for t, _ in pairs) / len(pairs) for k in range(4)) if pairs else None
        result["mean_iou"] = round(sum(iou(t, p) if p else 0.0 for t, p in pairs) / max(len(pairs), 1), 4)
        result["iou_at_0.5"] = round(sum(bool(p) and iou(t, p) >= 0.5 for t, p in pairs) / max(len(pairs), 1), 4)
        result["parsed_boxes"] = round(sum(p is not None for _, p in pairs) / max(len(pairs), 1), 4)
        # The constant predictor that knows the held-out mean box: a generous baseline (it has seen the answers).
        result["mean_box_baseline_iou"] = (
            round(sum(iou(t, mean_box) for t, _ in pairs) / len(pairs), 4) if mean_box else 0.0
        )
    if task == "ocr":
        hits, lines = map(sum, zip(*(line_match(g, t) for g, t in zip(generated, targets, strict=True)), strict=True))
        result["ocr_line_exact_match"] = round(hits / max(lines, 1), 4)
        result["ocr_lines"] = lines
    result["ends_with_eos"] = round(sum(g.endswith(qwen.EOS) for g in generated) / len(generated), 4)
    return result


@torch.no_grad()
def sparse_rows(
    model: VLM, tok: Tokenizer, samples: list[dict[str, Any]], *, vision: ImageInput, cfg: SparseConfig, max_new: int
) -> list[dict[str, Any]]:
    """SparseVLM rows (issue 19): per (keep ratio, recycle), greedy generation on single-image samples with the
    visual tokens pruned in the decoder, scored like the unpruned report, and the mean decoder FLOPs of the
    sample (prefix + target) under that schedule. Ratio 1.0 runs the same path without pruning. On the CPU."""
    prepared = []
    for s in samples:
        if image_spans(s) != 1 or not s["image_bytes"] or qwen.IMG_END not in s["prefix"]:
            continue
        slots = vision.slots(s, 1)
        if slots is None:
            continue
        prompt = tok.encode(s["prefix"], slots)
        full = tok.encode_sample(s["prefix"], s["target"], slots)
        pixels, grids = vision.pixels(s["image_bytes"][:1], vision.sizes(s, 1))
        prepared.append((s, prompt, full, torch.stack(pixels), torch.tensor(grids).reshape(-1, 2)))
    rows = []
    model.eval()
    for ratio in sorted({1.0, *cfg.keep_ratios}, reverse=True):
        for recycle in sorted(set(cfg.recycle)) if ratio < 1 else [False]:
            generated, targets, flops = [], [], []
            for s, prompt, full, pixels, grids in prepared:
                vis = slice(prompt.slots[0], prompt.slots[0] + slots_of(prompt, tok))
                steps = schedule(len(model.decoder.blocks), vis.stop - vis.start, ratio)
                out = _sparse_greedy(
                    model, tok, prompt, (pixels, grids), vis, steps=steps, recycle=recycle, max_new=max_new
                )
                generated.append(tok.decode(out))
                targets.append(s["target"])
                embeds = _embed(model, full, pixels, grids)
                _, _, lengths = pruned_forward(model.decoder, embeds, vis, steps, recycle=recycle)
                flops.append(decoder_flops(lengths, model.decoder.n_embd, model.decoder.lm_head.out_features))
            if not targets:
                continue
            measures = score("sparse", targets, generated)
            rows.append(
                {
                    "keep_ratio": ratio,
                    "recycle": recycle,
                    "visual_tokens": vis.stop - vis.start,
                    "schedule": [[st.layer, st.keep] for st in steps],
                    "samples": len(targets),
                    "mean_iou": measures.get("mean_iou"),
                    "mean_box_iou": measures.get("mean_box_baseline_iou"),
                    "iou50": measures.get("iou_at_0.5"),
                    "exact_match": measures["exact_match"],
                    "decoder_flops": round(sum(flops) / len(flops)),
                }
            )
    return rows


def slots_of(enc: Encoded, tok: Tokenizer) -> int:
    """Slots of the first image span of an encoding."""
    start = enc.slots[0]
    return enc.input_ids[start:].index(tok.ids[qwen.IMG_END])


def _embed(model: VLM, enc: Encoded, pixels: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    ids = torch.tensor([enc.input_ids], device=device)
    slots = torch.tensor([[0, enc.slots[0]]], device=device)
    return model.embed(ids, pixels.to(device), slots, grids.to(device))[0]


def _sparse_greedy(
    model: VLM, tok: Tokenizer, prompt: Encoded, images: tuple, vis: slice, *, steps: list, recycle: bool, max_new: int
) -> list[int]:
    """Greedy continuation of one prompt with pruning decided at the prefill and kept for every step."""
    embeds = _embed(model, prompt, *images)
    plan: Plan | None = None
    out: list[int] = []
    for _ in range(max_new):
        logits, plan, _ = pruned_forward(model.decoder, embeds, vis, steps, recycle=recycle, plan=plan)
        nxt = int(logits[-1].argmax())
        out.append(nxt)
        if nxt == tok.eos:
            break
        embeds = torch.cat([embeds, model.decoder.wte(torch.tensor([nxt], device=embeds.device))])
    return out
