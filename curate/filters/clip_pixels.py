"""The CLIP stage's CPU half (issue 20): read, decode, resize and crop each alive row's image in Ray tasks that
spread over every core, so the model actor only turns ready pixels into tensors and runs the forward.

Before, one actor decoded and preprocessed its batch and then ran the model, one step after the other on its own
cores: the tiny demo CLIP reached about 0.3 of its raw forward on 2 cores (README "Benchmarks", P1).

The PIL steps of open_clip's eval preprocessing are done here without torch (a task worker that imports torch
holds ~0.7 GiB more): resize (shortest side, or squash) with the model's interpolation, then centre crop, exactly
as torchvision does them on a PIL image; the result travels as uint8 RGB bytes (H x W x 3). `to_tensor` in the
actor then divides by 255 and normalizes, which is what open_clip's ToTensor + Normalize do. A test checks the
tensors equal open_clip's own preprocess. A model whose preprocessing is another kind (`longest` resize, a
non-square shortest-side crop) keeps the old path: the actor preprocesses itself (`supported`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)
PIXELS = "clip_pixels"  # the column between the two halves; the actor drops it
IMAGE_BYTES = "clip_image_bytes"  # instead of PIXELS under `decode: device`: the bytes as read, decoded by the actor
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")


def supported(cfg: dict[str, Any] | None) -> bool:
    """Whether the pixel stage can reproduce this preprocessing (open_clip PreprocessCfg as JSON values)."""
    if not cfg or cfg.get("interpolation") not in INTERPOLATIONS or cfg.get("mode") != "RGB":
        return False
    size = cfg["size"] if isinstance(cfg["size"], list) else [cfg["size"], cfg["size"]]
    return cfg.get("resize_mode") == "squash" or (cfg.get("resize_mode") == "shortest" and size[0] == size[1])


def square_size(cfg: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the model's input."""
    size = cfg["size"]
    return (int(size[0]), int(size[1])) if isinstance(size, list) else (int(size), int(size))


class ClipPixels:
    """Ray task body: adds PIXELS (uint8 RGB bytes, or null when the row is not alive or its image cannot be read
    or decoded) to an Arrow batch of ledger rows; with `raw`, IMAGE_BYTES instead (the image bytes as read, for the
    actor's device decode, `curate.filters.clip_device`)."""

    def __init__(self, cfg: dict[str, Any], raw: bool = False) -> None:
        self.cfg, self.raw = cfg, raw
        self.height, self.width = square_size(cfg)

    def on_arrow(self, table: pa.Table) -> pa.Table:
        from curate.core.images import TarReader

        tars = TarReader()
        alive = table.column("reject_reason").is_null().to_pylist()
        paths, members = table.column("image_path").to_pylist(), table.column("image_member").to_pylist()
        prepare = (lambda data: data) if self.raw else self.pixels
        values = [
            prepare(read_image(path, member, tars)) if ok else None
            for ok, path, member in zip(alive, paths, members, strict=True)
        ]
        return table.append_column(IMAGE_BYTES if self.raw else PIXELS, pa.array(values, pa.binary()))

    def pixels(self, data: bytes | None) -> bytes | None:
        """The image resized and cropped as the model's preprocessing does, as uint8 RGB bytes; None when the
        bytes do not decode (the actor then gives image:decode_error, as before)."""
        from curate.core.images import decode_rgb

        if data is None:
            return None
        try:
            # JPEGs decoded at the smallest DCT scale still >= the input size, as the actor's own path does
            image = self.transform(decode_rgb(data, min_size=self.height))
        except Exception as err:  # noqa: BLE001 - undecodable bytes are bad data
            log.warning("clip_score: cannot decode an image: %s", err)
            return None
        return np.asarray(image, dtype=np.uint8).tobytes()

    def transform(self, image: Any) -> Any:
        """torchvision's Resize + CenterCrop on a PIL image, for the supported configurations."""
        from PIL import Image

        resample = getattr(Image.Resampling, self.cfg["interpolation"].upper())
        w, h = image.size
        if self.cfg["resize_mode"] == "squash":
            return image if (w, h) == (self.width, self.height) else image.resize((self.width, self.height), resample)
        side = self.height  # shortest side to `side` (torchvision Resize(int)), then centre crop side x side
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = side, int(side * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample)
        top, left = int(round((new_h - side) / 2.0)), int(round((new_w - side) / 2.0))
        return image.crop((left, top, left + side, top + side))


def read_image(path: Any, member: Any, tars: Any) -> bytes | None:
    """A row's image bytes, or None (logged) when the file or tar member cannot be read: bad data, which the
    actor turns into image:decode_error."""
    from curate.core.images import read_image_bytes

    try:
        return read_image_bytes(path, member, tars)
    except Exception as err:  # noqa: BLE001 - a missing member or file is bad data, as undecodable bytes are
        log.warning("clip_score: cannot read %s %s: %s", path, member if isinstance(member, str) else "", err)
        return None


def to_tensor(pixels: list[bytes], cfg: dict[str, Any], device: str = "cpu") -> Any:
    """A float batch (N, 3, H, W) on `device` from PIXELS values: / 255, then (x - mean) / std, as ToTensor +
    Normalize. On CUDA the uint8 batch is pinned and copied without blocking (4x fewer bytes than floats) and
    normalized there."""
    import torch

    height, width = square_size(cfg)
    flat = np.frombuffer(bytearray().join(pixels), np.uint8)  # a writable buffer: torch.from_numpy shares it
    batch = torch.from_numpy(flat.reshape(len(pixels), height, width, 3))
    if device.startswith("cuda"):
        batch = batch.pin_memory().to(device, non_blocking=True)
    return normalized(batch.permute(0, 3, 1, 2), cfg)


def normalized(images: Any, cfg: dict[str, Any]) -> Any:
    """uint8 (..., 3, H, W) -> float: / 255, then (x - mean) / std per channel (ToTensor + Normalize)."""
    import torch

    mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=images.device).view(3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32, device=images.device).view(3, 1, 1)
    return (images.float().div(255) - mean) / std
