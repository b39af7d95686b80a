"""The CLIP stage's optional device decode (issue 20, `clip_score.decode: device`): JPEGs are decoded in batches by
`torchvision.io.decode_jpeg` on the model's device (nvJPEG on a GPU, libjpeg-turbo on a CPU), then resized,
cropped and normalized there, so a GPU node is not held back by its CPU cores decoding.

What stays on the CPU path (today's PIL decode + open_clip preprocess, `fallback`), so the reasons are today's:
- anything that is not a JPEG (PNG, WebP, GIF, ...);
- a JPEG without its end-of-image marker near the end (a truncated file: PIL rejects it, a device decoder might
  not) or with more pixels than PIL's decompression-bomb limit (PIL rejects it before decoding);
- a JPEG the device decoder refuses: PIL then decides, and an image PIL cannot decode either is
  `image:decode_error`, as before.

The CPU path lets libjpeg decode a large JPEG at a reduced DCT scale (PIL's `draft`: 1/2, 1/4 or 1/8, the
smallest that keeps both sides >= the model's size), then resizes with PIL's bicubic. Device decoders have no
DCT scaling here, so this path decodes at full size, averages scale x scale blocks (the edge replicated, as JPEG
encoders pad partial blocks), then resizes with torchvision's antialiased bicubic (PIL's filter) and applies the
EXIF orientation last, as PIL does after `draft`. Without the block average, a 64 px model's scores moved by up
to 0.06 on real photos; a test bounds the difference with it on real photos.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from curate.core.images import MAX_IMAGE_PIXELS
from curate.filters.clip_pixels import normalized

log = logging.getLogger(__name__)
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
EOI_WINDOW = 4096  # bytes at the end searched for the end-of-image marker: some writers append data after it


def device_jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) of a JPEG the device may decode; None sends the bytes to the CPU path:
    not a JPEG, no end-of-image marker near the end, a colour mode other than RGB or grey (CMYK), an unreadable
    header, or more pixels than PIL accepts (it refuses above twice MAX_IMAGE_PIXELS; so does the CPU path)."""
    if not data.startswith(JPEG_SOI) or JPEG_EOI not in data[-EOI_WINDOW:]:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:  # the header only: no pixel is decoded
            width, height = img.size
            mode, orientation = img.mode, img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - an unreadable header: the CPU path gives the reason
        return None
    if mode not in ("RGB", "L") or not 0 < width * height <= 2 * MAX_IMAGE_PIXELS:
        return None
    return width, height, orientation if orientation in range(1, 9) else 1


class DeviceDecoder:
    """Image bytes -> normalized float pixels (N, 3, H, W) on `device`, for the model's preprocessing `cfg`
    (open_clip PreprocessCfg values; `clip_pixels.supported` kinds only). `fallback(data)` is the CPU path: a
    normalized (3, H, W) tensor, or None when the bytes do not decode."""

    def __init__(self, cfg: dict[str, Any], device: str, fallback: Callable[[bytes], Any]) -> None:
        from torchvision.transforms import InterpolationMode

        from curate.filters.clip_pixels import square_size

        self.cfg, self.device, self.fallback = cfg, device, fallback
        self.height, self.width = square_size(cfg)
        self.interpolation = InterpolationMode(cfg["interpolation"])

    def __call__(self, datas: list[bytes | None]) -> tuple[list[int], Any]:
        """(indices of the images that decoded, their pixels in that order); the others score NaN."""
        import torch

        pixels: dict[int, Any] = {}
        headers = {i: device_jpeg_header(d) for i, d in enumerate(datas) if d is not None}
        jpegs = [i for i, header in headers.items() if header is not None]
        crops = {}  # uint8 crops on the device, normalized together below
        for i, image in zip(jpegs, self._decode([datas[i] for i in jpegs]), strict=True):
            if image is not None:
                crops[i] = self._preprocess(image, headers[i][2])
        if crops:
            pixels.update(zip(crops, normalized(torch.stack(list(crops.values())), self.cfg), strict=True))
        for i, data in enumerate(datas):
            if data is not None and i not in pixels:
                cpu = self.fallback(data)
                if cpu is not None:
                    pixels[i] = cpu.to(self.device, non_blocking=True)
        where = sorted(pixels)
        return where, torch.stack([pixels[i] for i in where]) if where else None

    def _decode(self, datas: list[bytes]) -> list[Any]:
        """uint8 (3, h, w) tensors on the device as stored (EXIF orientation not applied yet); None where the
        decoder refuses. One batched call; when it fails (one bad image fails the batch), each image alone."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        if not datas:
            return []
        encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        options = {"mode": ImageReadMode.RGB, "device": self.device, "apply_exif_orientation": False}
        try:
            return list(decode_jpeg(encoded, **options))
        except RuntimeError:
            out = []
            for data in encoded:
                try:
                    out.append(decode_jpeg(data, **options))
                except RuntimeError as err:
                    log.info("clip_score: the device decoder refused a JPEG, PIL decides: %s", str(err)[:200])
                    out.append(None)
            return out

    def _preprocess(self, image: Any, orientation: int) -> Any:
        """The CPU path's draft + exif_transpose + Resize + CenterCrop on a uint8 (3, h, w) device tensor as
        stored; uint8 (3, H, W) out."""
        import torch
        import torch.nn.functional as F
        from torchvision.transforms.v2 import functional as tvf

        height, width = image.shape[1:]
        scale = draft_scale(width, height, self.height)
        if scale > 1:  # libjpeg's DCT scaling, approximated by a block average over the edge-padded image
            padded = F.pad(image[None].float(), (0, -width % scale, 0, -height % scale), mode="replicate")
            image = F.avg_pool2d(padded, scale)[0].round_().clamp_(0, 255).to(torch.uint8)
        image = oriented(image, orientation)
        if self.cfg["resize_mode"] == "squash":
            image = tvf.resize(image, [self.height, self.width], self.interpolation, antialias=True)
        else:  # shortest side to the crop size (torchvision Resize(int)), then the centre crop
            image = tvf.resize(image, [self.height], self.interpolation, antialias=True)
            image = tvf.center_crop(image, [self.height, self.width])
        return image


def draft_scale(width: int, height: int, size: int) -> int:
    """The DCT scale PIL's JpegImageFile.draft picks for a requested (size, size): the largest of 8, 4, 2, 1 not
    above min(width // size, height // size)."""
    fits = min(width // size, height // size)
    return next(s for s in (8, 4, 2, 1) if fits >= s) if fits >= 1 else 1


ORIENTATIONS = {  # EXIF orientation -> PIL's exif_transpose as tensor ops on (C, H, W); PIL turns counter-clockwise
    2: lambda x: x.flip(-1),  # FLIP_LEFT_RIGHT
    3: lambda x: x.flip(-1).flip(-2),  # ROTATE_180
    4: lambda x: x.flip(-2),  # FLIP_TOP_BOTTOM
    5: lambda x: x.transpose(-1, -2),  # TRANSPOSE
    6: lambda x: x.transpose(-1, -2).flip(-1),  # ROTATE_270
    7: lambda x: x.transpose(-1, -2).flip(-1).flip(-2),  # TRANSVERSE
    8: lambda x: x.transpose(-1, -2).flip(-2),  # ROTATE_90
}


def oriented(image: Any, orientation: int) -> Any:
    """PIL's ImageOps.exif_transpose on a (C, H, W) tensor (EXIF orientation 1-8)."""
    turn = ORIENTATIONS.get(orientation)
    return turn(image) if turn else image
