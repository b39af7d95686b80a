"""Train the tiny demo CLIP (curate-tiny-clip) on matched image-caption pairs, on CPU in seconds.

No CLIP weights can be downloaded here, so the demo's CLIP stage uses a model trained on the demo's own photos:
it knows only those twelve subjects, which is enough to tell matched pairs from mismatched ones. For real data
point clip_score.pretrained at real weights.
"""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curate.clip.models import TINY_MODEL, register_project_configs
from curate.core.atomic import write_atomic
from curate.core.images import decode_rgb

log = logging.getLogger(__name__)
HELDOUT_FRACTION = 0.15


def train_tiny_clip(
    pairs: str | Path, out: str | Path, *, steps: int = 150, seed: int = 0, batch_size: int = 64, lr: float = 1e-3
) -> dict[str, float]:
    """Train and save a checkpoint open_clip can load as pretrained=<path>; returns held-out metrics."""
    import open_clip
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    register_project_configs()
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_MODEL, pretrained=None)
    tokenizer = open_clip.get_tokenizer(TINY_MODEL)
    images, tokens, photo = _load_pairs(Path(pairs), preprocess, tokenizer)
    order = np.random.default_rng(seed).permutation(len(photo))
    cut = int(len(order) * (1 - HELDOUT_FRACTION))
    train, held = torch.as_tensor(order[:cut]), torch.as_tensor(order[cut:])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    generator = torch.Generator().manual_seed(seed)
    started = time.time()
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:  # cosine decay with a short warm-up
            group["lr"] = lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = train[torch.randint(len(train), (batch_size,), generator=generator)]
        img = model.encode_image(images[idx], normalize=True)
        txt = model.encode_text(tokens[idx], normalize=True)
        logits = model.logit_scale.exp() * img @ txt.T
        # Several pairs in a batch show the same photo: they are positives too, not negatives.
        same = (photo[idx][:, None] == photo[idx][None, :]).float()
        target = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("train-clip step %d/%d loss %.3f (%.1f s)", step + 1, steps, loss.item(), time.time() - started)
    report = _evaluate(model, images[held], tokens[held], photo[held])
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "model": TINY_MODEL}, buffer)
    write_atomic(Path(out), lambda tmp: tmp.write_bytes(buffer.getvalue()))
    log.info("train-clip: %s", report)
    return report


def _load_pairs(path: Path, preprocess, tokenizer):  # noqa: ANN001, ANN202 - torch objects
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; generate it with `curate demo-data`")
    table = pq.read_table(path).to_pydict()
    base = path.parent
    images = torch.stack([preprocess(decode_rgb((base / p).read_bytes())) for p in table["image_path"]])
    tokens = tokenizer(table["caption"])
    return images, tokens, torch.as_tensor(table["photo"])


def _evaluate(model, images, tokens, photo) -> dict[str, float]:  # noqa: ANN001 - torch objects
    """Cosine similarity of held-out matched pairs vs. the same images with captions of other photos."""
    import torch

    model.eval()
    with torch.inference_mode():
        img = model.encode_image(images, normalize=True)
        txt = model.encode_text(tokens, normalize=True)
    sim = (img @ txt.T).numpy()
    same = (photo[:, None] == photo[None, :]).numpy()
    matched = np.diag(sim)
    shuffled = sim[~same]
    auc = float((matched[:, None] > shuffled[None, :]).mean())
    return {
        "matched_mean": float(matched.mean()),
        "shuffled_mean": float(shuffled.mean()),
        "auc": auc,
        "matched_p05": float(np.quantile(matched, 0.05)),
        "shuffled_p95": float(np.quantile(shuffled, 0.95)),
    }
