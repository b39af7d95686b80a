"""What the reference model's vision side receives for a sample's images under an image plan (issue 18): how many
slots each `<img>` span holds, and the pixel tensors that fill them.

- `qwen_vl`: one square image per `<img>` span, squashed to `image_size` (Qwen-VL's visual.py, §7), and the
  adapter's `n_queries` slots (256 in Qwen-VL; fewer in a toy model).
- `deepseek_vl2`: the global thumbnail, then the local tiles row by row (curate.format.image_plan.views), each
  view resized to `view_size` (the ViT side giving SigLIP's 27 x 27 patch grid) and normalized; the slots are
  the plan's exact count, from the sample's recorded image size, so packing and training count the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from curate.core.errors import ConfigError
from curate.core.images import decode_rgb, header_size
from curate.format.image_plan import TILE, TRAINED_PLANS, plan_image, sample_image_tokens, views

# The CLIP normalization Qwen-VL's visual.py applies after a plain squash Resize((S, S), BICUBIC) (§7).
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
VIEW_PATCHES = 27  # SigLIP-so400m/14 at 384 px: 27 x 27 patches per view, padded to 28 x 28 (DeepSeek-VL2)


def normalize(img: Image.Image) -> torch.Tensor:
    array = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def image_tensor(data: bytes, size: int) -> torch.Tensor:
    """(3, size, size): squashed to a square with bicubic resampling, CLIP-normalized (§7)."""
    return normalize(decode_rgb(data, min_size=size).resize((size, size), Image.Resampling.BICUBIC))


@dataclass(frozen=True)
class ImageInput:
    """Slots and pixels of images under one plan. `image_size` is qwen_vl's square side; `view_size` the side
    every deepseek_vl2 view is resized to for the ViT (27 patches)."""

    plan: str
    n_queries: int
    image_size: int
    view_size: int = TILE

    def __post_init__(self) -> None:
        if self.plan not in TRAINED_PLANS:
            raise ConfigError(f"image_plan {self.plan!r}: the reference model trains under {', '.join(TRAINED_PLANS)}")

    def slots(self, sample: dict[str, Any], images: int) -> list[int] | None:
        """Slots of each of the sample's first `images` images; None when a size is unknown and no bytes say it."""
        if self.plan == "qwen_vl":
            return [self.n_queries] * images
        sizes = sample.get("image_sizes") or []
        if len(sizes) < images:
            try:
                sizes = [header_size(b) for b in sample.get("image_bytes", [])[:images]]
            except Exception:  # noqa: BLE001 - unreadable bytes: the caller counts the sample out
                return None
        return sample_image_tokens(self.plan, sizes, images)

    def pixels(self, data: Sequence[bytes], sizes: Sequence[Sequence[int]]) -> tuple[list[torch.Tensor], list]:
        """(view tensors in order, [columns, rows] per image) of one sample's images; `sizes` the plan's sizes.
        qwen_vl gives one tensor and grid [0, 0] per image."""
        if self.plan == "qwen_vl":
            return [image_tensor(b, self.image_size) for b in data], [[0, 0]] * len(data)
        tensors, grids = [], []
        for blob, (width, height) in zip(data, sizes, strict=True):
            plan = plan_image(self.plan, int(width), int(height), len(data))
            thumbnail, tiles = views(decode_rgb(blob), plan)
            side = (self.view_size, self.view_size)
            tensors += [normalize(v.resize(side, Image.Resampling.BICUBIC)) for v in (thumbnail, *tiles)]
            grids.append(list(plan.grid))
        return tensors, grids

    def sizes(self, sample: dict[str, Any], images: int) -> list[list[int]]:
        """The sizes a plan uses for the sample: recorded, else read from the bytes' headers."""
        recorded = sample.get("image_sizes") or []
        if len(recorded) >= images:
            return [list(s) for s in recorded[:images]]
        return [list(header_size(b)) for b in sample["image_bytes"][:images]]
