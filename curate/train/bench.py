"""Training-step throughput of the reference model: tokens/s, model FLOPs utilization (MFU), and the share of
step time spent waiting for data.

`python -m curate.train.bench --preset 300m` on a GPU (bf16 autocast), `--preset tiny` anywhere. By default the
batches are synthetic packed sequences holding images, made once on the device, so only the model is measured.
`--data SHARDS` feeds the trainer's own data path instead (WebDataset shards of `curate mix` or `curate build`,
decoded and collated by `--workers` DataLoader processes, pinned and copied without blocking), and the time each
step waits for its batch is reported as `data_wait_share` (issue 20). The text is tokenized in bytes (the presets'
vocabulary), so a sequence `curate mix` packed by Qwen tokens fills a row sooner and the rest of its samples are
counted out as too long; tokens/s and MFU count only the tokens trained on. `--compile` runs the step under
torch.compile, as `compile: true` does in `curate train`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import torch

from curate.format.tokenizer import ByteTokenizer
from curate.train.connectors import AdapterConfig
from curate.train.data import Collator, ShardStream, find_shards, make_loader
from curate.train.model import VLM, DecoderConfig, VisionConfig, VLMConfig
from curate.train.pixels import ImageInput

# Dense bf16 peak per GPU for MFU (vendor datasheets: H100 SXM 989 TFLOP/s; H200 the same compute).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
PRESETS = {
    # ~340M parameters: ViT-B/16 (86M) + adapter + a 20-layer, 1024-wide decoder (~250M)
    "300m": dict(
        vision="ViT-B-16", n_layer=20, n_head=16, n_embd=1024, n_queries=256, seq_len=2048, batch=8, images_per_seq=4
    ),
    "tiny": dict(
        vision="curate-tiny-clip", n_layer=2, n_head=4, n_embd=64, n_queries=16, seq_len=256, batch=2, images_per_seq=2
    ),
}


def build(preset: dict) -> VLM:
    cfg = VLMConfig(
        vision=VisionConfig(model=preset["vision"]),
        adapter=AdapterConfig(n_queries=preset["n_queries"], heads=preset["n_head"]),
        decoder=DecoderConfig(
            vocab_size=ByteTokenizer().vocab_size,
            n_layer=preset["n_layer"],
            n_head=preset["n_head"],
            n_embd=preset["n_embd"],
        ),
    )
    return VLM(cfg)


def model_flops_per_step(model: VLM, preset: dict, tokens: int | None = None, images: int | None = None) -> float:
    """6 * params * tokens for the decoder and ViT (plus the decoder's attention scores), per training step.
    `tokens` and `images` default to the synthetic batch's (every position a token); with real data they are the
    batch's own (padding is not useful work)."""
    dec = sum(p.numel() for p in model.decoder.parameters()) - model.decoder.wte.weight.numel()
    vit = sum(p.numel() for p in model.vision.parameters())
    adapter = sum(p.numel() for p in model.adapter.parameters())
    tokens = preset["batch"] * preset["seq_len"] if tokens is None else tokens
    images = preset["batch"] * preset["images_per_seq"] if images is None else images
    patches = (model.vision.image_size // model.vision.patch) ** 2
    attention = 12 * preset["n_layer"] * preset["n_embd"] * preset["seq_len"] * tokens
    return 6 * dec * tokens + attention + 6 * vit * images * patches + 6 * adapter * images * preset["n_queries"]


def synthetic_batch(model: VLM, preset: dict, device: str) -> dict:
    b, t, n_img = preset["batch"], preset["seq_len"], preset["images_per_seq"]
    vocab = model.cfg.decoder.vocab_size
    ids = torch.randint(0, 256, (b, t), device=device)
    step = t // n_img  # one image at the start of each packed sample
    slots = torch.tensor([[row, k * step + 1] for row in range(b) for k in range(n_img)], device=device)
    segments = (torch.arange(t, device=device) // step).clamp(max=n_img - 1).expand(b, t).contiguous()
    positions = (torch.arange(t, device=device) % step).expand(b, t).contiguous()
    size = model.vision.image_size
    return {
        "input_ids": ids.clamp(max=vocab - 1),
        "segments": segments,
        "positions": positions,
        "images": torch.randn(b * n_img, 3, size, size, device=device),
        "image_slots": slots,
        "image_grids": torch.zeros((b * n_img, 2), dtype=torch.long, device=device),
        "labels": ids,
    }


def shard_batches(model: VLM, preset: dict, patterns: list[str], workers: int, device: str) -> Iterator[dict]:
    """The trainer's data path over `patterns`: shards read, images decoded and sequences collated in `workers`
    DataLoader processes (0 = in this one), pinned on CUDA."""
    shards = find_shards(patterns)
    if not shards:
        raise SystemExit(f"--data {' '.join(patterns)} matches no .tar shards (run curate mix or curate build)")
    vision = ImageInput("qwen_vl", preset["n_queries"], model.vision.image_size)
    collate = Collator(ByteTokenizer(), vision, preset["seq_len"])
    stream = ShardStream(shards, collate, shuffle_buffer=1000, batch_size=preset["batch"], seed=0)
    return iter(make_loader(stream, workers, pin_memory=device == "cuda"))


def run(
    preset_name: str,
    steps: int,
    warmup: int,
    *,
    data: list[str] | None = None,
    workers: int = 0,
    compile_model: bool = False,
) -> dict:
    preset = PRESETS[preset_name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = build(preset).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05, fused=device == "cuda"
    )
    forward = torch.compile(model) if compile_model else model
    synthetic = synthetic_batch(model, preset, device) if data is None else None
    batches = shard_batches(model, preset, data, workers, device) if data is not None else None
    timings, waits, flops, counted = [], [], [], []
    for step in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        if batches is None:  # already on the device: no wait (timing the assignment measured only jitter)
            batch, waited = synthetic, 0.0
            tokens, images = None, None
        else:  # the wait for the next batch and its copy to the device, as in `curate train`
            host = next(batches)
            batch = {k: v.to(device, non_blocking=True) for k, v in host.items() if isinstance(v, torch.Tensor)}
            tokens, images = int((host["segments"] >= 0).sum()), len(host["images"])
            waited = time.perf_counter() - started
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            _, loss = forward(
                batch["input_ids"],
                batch["segments"],
                batch["positions"],
                images=batch["images"],
                image_slots=batch["image_slots"],
                image_grids=batch["image_grids"],
                labels=batch["labels"],
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            timings.append(time.perf_counter() - started)
            waits.append(waited)
            flops.append(model_flops_per_step(model, preset, tokens, images))
            counted.append(preset["batch"] * preset["seq_len"] if tokens is None else tokens)
    seconds = sum(timings) / len(timings)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    achieved = sum(flops) / sum(timings)
    return {
        "preset": preset_name,
        "device": name,
        "data": "synthetic" if data is None else " ".join(data),
        "workers": workers if data is not None else None,
        "compile": compile_model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_per_step": round(sum(counted) / len(counted), 1),  # real tokens (no padding) with --data
        "step_s": round(seconds, 4),
        "tokens_per_s": round(sum(counted) / sum(timings), 1),
        "model_tflops_per_s": round(achieved / 1e12, 2),
        "mfu": round(achieved / peak, 4) if peak else None,
        # the share of step time spent waiting for batches (and copying them); 0 by construction when synthetic
        "data_wait_share": round(sum(waits) / sum(timings), 4),
        "loss": round(loss.item(), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data", nargs="+", metavar="SHARDS", help="shard globs or folders (default: synthetic)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader processes with --data (default 4)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU runs)")
    args = parser.parse_args()
    options = {"data": args.data, "workers": args.workers, "compile_model": args.compile}
    print(json.dumps(run(args.preset, args.steps, args.warmup, **options), indent=1))


if __name__ == "__main__":
    main()
