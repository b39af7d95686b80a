"""Training-step throughput of the reference model: tokens/s and model FLOPs utilization (MFU).

`python -m curate.train.bench --preset 300m` on a GPU (bf16 autocast), `--preset tiny` anywhere. Synthetic
batches of packed 2048-token sequences holding images, so only the model is measured, not the data path.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from curate.format.tokenizer import ByteTokenizer
from curate.train.connectors import AdapterConfig
from curate.train.model import VLM, DecoderConfig, VisionConfig, VLMConfig

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


def model_flops_per_step(model: VLM, preset: dict) -> float:
    """6 * params * tokens for the decoder and ViT (plus the decoder's attention scores), per training step."""
    dec = sum(p.numel() for p in model.decoder.parameters()) - model.decoder.wte.weight.numel()
    vit = sum(p.numel() for p in model.vision.parameters())
    adapter = sum(p.numel() for p in model.adapter.parameters())
    tokens = preset["batch"] * preset["seq_len"]
    images = preset["batch"] * preset["images_per_seq"]
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
        "labels": ids,
    }


def run(preset_name: str, steps: int, warmup: int) -> dict:
    preset = PRESETS[preset_name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = build(preset).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05, fused=device == "cuda"
    )
    batch = synthetic_batch(model, preset, device)
    timings = []
    for step in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            _, loss = model(
                batch["input_ids"],
                batch["segments"],
                batch["positions"],
                images=batch["images"],
                image_slots=batch["image_slots"],
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
    seconds = sum(timings) / len(timings)
    tokens = preset["batch"] * preset["seq_len"]
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    flops = model_flops_per_step(model, preset)
    return {
        "preset": preset_name,
        "device": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_per_step": tokens,
        "step_s": round(seconds, 4),
        "tokens_per_s": round(tokens / seconds, 1),
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / peak, 4) if peak else None,
        "loss": round(loss.item(), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.preset, args.steps, args.warmup), indent=1))


if __name__ == "__main__":
    main()
