"""CLIP score filter (paper App. A.1, rule 3: "removing pairs with a harsh CLIP score")."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from curate.core.errors import ConfigError
from curate.filters.base import Batch, Filter, captions, numeric
from curate.filters.clip_pixels import IMAGE_BYTES, PIXELS, read_image, to_tensor

log = logging.getLogger(__name__)
DECODES = ("cpu", "device")


@dataclass(kw_only=True)
class ClipScore(Filter):
    """Keeps pairs whose image-caption cosine similarity under an open_clip model is at least `min_score`."""

    name: ClassVar[str] = "clip_score"
    reasons: ClassVar[tuple[str, ...]] = ("clip_score", "image:decode_error")
    uses_model: ClassVar[bool] = True
    model: str = "ViT-B-32"
    pretrained: str | None = "openai"  # open_clip tag, or a local checkpoint path
    min_score: float = 0.28  # LAION-400M's cut for ViT-B/32; dataset-specific (paper App. A.1)
    # Torch CPU threads per actor; 0 = the worker's CPUs / concurrency. Ray sets
    # OMP_NUM_THREADS=1 in an actor that asks for one CPU, which left a CPU forward on one core (measured: half
    # the raw open_clip throughput on 2 cores, `curate bench` P1). The actor still reserves only one CPU, so
    # the cheap stages keep a slot.
    threads: int = 0
    # Keep each image's embedding (float16, unit length) in <out>/embeddings/part-*.parquet, beside the ledger:
    # dedup_semantic reads them, and users want them by themselves (as clip-retrieval gives them).
    save_embeddings: bool = False
    # Where images are decoded (issue 20): cpu = Ray tasks over every core read, decode, resize and crop, and the
    # actor gets ready pixels; device = the tasks only read, and the actor decodes JPEGs in batches on its device
    # (nvJPEG on a GPU) and resizes there, other formats and refused JPEGs on the CPU as before
    # (curate.filters.clip_device). Scores differ slightly between the two (full-size decode, antialiased resize).
    decode: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threads < 0:
            raise ConfigError("clip_score.threads must be >= 0 (0 = the worker's CPUs / concurrency)")
        if self.decode not in DECODES:
            raise ConfigError(f"clip_score.decode {self.decode!r} is not valid; valid: {', '.join(DECODES)}")

    def preflight(self) -> None:
        from curate.clip.models import check_weights_in_child, looks_like_path

        # The driver never imports torch (issue 8's bound); the child also says how the model preprocesses, for the
        # CPU pixel stage (curate.filters.clip_pixels). An attribute, not a config field: not part of the identity.
        self.pixel_cfg = check_weights_in_child(self.model, self.pretrained)
        if self.decode == "device":
            device_decode_supported(self.pixel_cfg)
        if self.pretrained and looks_like_path(self.pretrained):  # Ray workers on other nodes have another cwd
            self.pretrained = str(Path(self.pretrained).resolve())

    def artifacts(self) -> list[str]:
        from curate.clip.models import local_weight_files

        return local_weight_files(self.model, self.pretrained)

    def setup(self) -> None:
        import torch

        from curate.clip.models import load_clip, preprocess_config
        from curate.core.images import TarReader

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = device
        if device == "cpu":
            torch.set_num_threads(self.cpu_threads())
        self._model, self._preprocess, self._tokenizer = load_clip(self.model, self.pretrained, device)
        self._tars = TarReader()
        loaded = preprocess_config(self._model)
        staged = getattr(self, "pixel_cfg", None)
        if staged is not None and staged != loaded:  # the pixel stage must prepare what this model expects
            raise RuntimeError(f"clip_score: the pixel stage prepared {staged}, the model loads {loaded}")
        self._decoder = None
        if self.decode == "device":
            from curate.filters.clip_device import DeviceDecoder

            if device == "cpu":
                log.warning(
                    "clip_score: decode: device on a CPU actor decodes every image in the actor itself; "
                    "decode: cpu spreads decoding over all cores (meant for GPUs: nvJPEG)"
                )
            decode_cfg = device_decode_supported(loaded)
            self._decoder = DeviceDecoder(decode_cfg, device, lambda data: self._pixels(data, ("bytes", None)))
        image_size = self._model.visual.image_size
        self._decode_size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)

    def cpu_threads(self) -> int:
        return self.threads or max(1, len(os.sched_getaffinity(0)) // self.concurrency)

    def score(self, rows: Batch) -> pd.DataFrame:
        if not hasattr(self, "_model"):
            self.setup()
        scores = np.full(len(rows), np.nan)
        embeddings: list[bytes | None] = [None] * len(rows)
        # the Ray plan's pixel stage prepared pixels (decode: cpu) or read the bytes (decode: device); called
        # directly, the filter reads (and decodes) here
        staged = PIXELS if PIXELS in rows.columns else IMAGE_BYTES if IMAGE_BYTES in rows.columns else None
        firsts = rows[staged] if staged else rows["image_path"]
        records = list(zip(firsts, rows["image_member"], captions(rows), strict=True))
        for start in range(0, len(records), self.batch_size):
            part = records[start : start + self.batch_size]
            if staged == PIXELS:
                batch = self._score_ready(part)
            elif self._decoder is not None:
                batch = self._score_on_device(part, read=staged is None)
            else:
                batch = self._score_batch(part)
            scores[start : start + len(part)], embeddings[start : start + len(part)] = batch
        columns: dict[str, Any] = {"clip_score": scores}
        if self.save_embeddings:
            columns["clip_embedding"] = embeddings  # float16 bytes: a plain binary column through Ray's blocks
        return pd.DataFrame(columns, index=rows.index)

    def _score_batch(self, records: list[tuple[Any, Any, Any]]) -> tuple[np.ndarray, list[bytes | None]]:
        """Read, decode, preprocess and score in this process (the filter called directly, or a model whose
        preprocessing the pixel stage does not reproduce)."""
        datas = [self._read(path, member) for path, member, _ in records]  # the tar index cache is not thread-safe
        pixels = [self._pixels(data, record[:2]) for data, record in zip(datas, records, strict=True)]
        where = [i for i, p in enumerate(pixels) if p is not None]
        return self._scored(records, where, lambda: torch_stack([pixels[i] for i in where]))

    def _score_ready(self, records: list[tuple[Any, Any, Any]]) -> tuple[np.ndarray, list[bytes | None]]:
        """Score rows whose pixels the pixel stage prepared (None: the image did not read or decode)."""
        where = [i for i, (pixels, _, _) in enumerate(records) if isinstance(pixels, bytes)]
        pixels = [records[i][0] for i in where]
        return self._scored(records, where, lambda: to_tensor(pixels, self.pixel_cfg, self._device))

    def _score_on_device(self, records: list[tuple[Any, Any, Any]], read: bool) -> tuple[np.ndarray, list]:
        """Score rows from their image bytes (read here when `read`), decoded by the device decoder."""
        if read:
            datas = [self._read(path, member) for path, member, _ in records]
        else:
            datas = [first if isinstance(first, bytes) else None for first, _, _ in records]
        where, images = self._decoder(datas)
        return self._scored(records, where, lambda: images)

    def _scored(self, records: list, where: list[int], images: Any) -> tuple[np.ndarray, list[bytes | None]]:
        out = np.full(len(records), np.nan)
        embeddings: list[bytes | None] = [None] * len(records)
        if where:
            texts = [c if isinstance(c, str) else "" for c in (records[i][2] for i in where)]  # NA: missing caption
            out[where], features = self._similarity(images(), texts)
            for i, vector in zip(where, features.astype(np.float16), strict=True):
                embeddings[i] = vector.tobytes()
        return out, embeddings

    def _read(self, path: Any, member: Any) -> bytes | None:
        return read_image(path, member, self._tars)

    def _pixels(self, data: bytes | None, where: tuple[Any, Any]) -> Any:
        """The preprocessed image tensor, or None: undecodable bytes are bad data (NaN, then image:decode_error
        in verdict())."""
        from curate.core.images import decode_rgb

        if data is None:
            return None
        try:
            return self._preprocess(decode_rgb(data, min_size=self._decode_size))
        except Exception as err:  # noqa: BLE001
            log.warning(
                "clip_score: cannot decode %s %s: %s", where[0], where[1] if isinstance(where[1], str) else "", err
            )
            return None

    def _similarity(self, images: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities, and the unit image embeddings, of a (N, 3, H, W) float batch and N captions."""
        import torch

        if self._device.startswith("cuda") and images.device.type == "cpu":  # a CPU-preprocessed batch
            images = images.pin_memory().to(self._device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self._device, enabled=self._device == "cuda"):
            image_features = self._model.encode_image(images.to(self._device), normalize=True)
            text_features = self._model.encode_text(self._tokenizer(texts).to(self._device), normalize=True)
            similarity = (image_features.float() * text_features.float()).sum(dim=-1)
        return similarity.cpu().numpy(), image_features.float().cpu().numpy()

    def embed_images(self, datas: list[bytes | None]) -> np.ndarray:
        """Unit image embeddings (float32), a NaN row where the bytes do not decode (reference sets, issue 17)."""
        import torch

        if not hasattr(self, "_model"):
            self.setup()
        pixels = [self._pixels(d, ("reference", None)) for d in datas]
        where = [i for i, p in enumerate(pixels) if p is not None]
        out = None
        for start in range(0, len(where), self.batch_size):
            part = where[start : start + self.batch_size]
            with torch.inference_mode():
                batch = torch.stack([pixels[i] for i in part]).to(self._device)
                features = self._model.encode_image(batch, normalize=True).float().cpu().numpy()
            if out is None:
                out = np.full((len(datas), features.shape[1]), np.nan, np.float32)
            out[part] = features
        return out if out is not None else np.full((len(datas), 1), np.nan, np.float32)

    def pixel_stage(self) -> Any:
        """The CPU pixel stage for this model (curate.filters.clip_pixels), or None when the model's preprocessing
        is a kind it does not reproduce (or preflight has not run): the actor then decodes itself."""
        from curate.filters.clip_pixels import ClipPixels, supported

        cfg = getattr(self, "pixel_cfg", None)
        return ClipPixels(cfg, raw=self.decode == "device") if supported(cfg) else None

    def verdict(self, rows: Batch) -> pd.Series:
        reasons = [
            "image:decode_error" if math.isnan(score) else ("clip_score" if score < self.min_score else None)
            for score in numeric(rows["clip_score"])
        ]
        return pd.Series(reasons, index=rows.index, dtype=object)


def device_decode_supported(cfg: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing `decode: device` reproduces on tensors: what the CPU pixel stage supports, less lanczos
    (torchvision resizes tensors with nearest, bilinear or bicubic only)."""
    from curate.filters.clip_pixels import supported

    if not supported(cfg) or cfg["interpolation"] == "lanczos":
        raise ConfigError(
            f"clip_score.decode: device needs a model preprocessing with a shortest-side (square) or squash "
            f"resize by nearest, bilinear or bicubic interpolation; this model's is {cfg}. Use decode: cpu"
        )
    return cfg


def torch_stack(tensors: list[Any]) -> Any:
    import torch

    return torch.stack(tensors)
