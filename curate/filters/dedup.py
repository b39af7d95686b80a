"""Deduplication and decontamination stages of the filter pipeline (issue 17).

They are listed among the filters and run in two halves. Per row, in the streamed pass, they compute the
row's fingerprint (a digest or a perceptual hash; the semantic stage reuses the CLIP image embedding the
clip_score stage saves). Globally, after every chunk is done, curate.dedup.run compares the fingerprints of all
rows still kept and writes `duplicate:*` / `contaminated:<set>` with `dup_of` and `dup_distance`. A global
stage sees only the rows every per-row filter kept, so they come after the per-row filters in the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from curate.core.errors import ConfigError
from curate.dedup.hashes import (
    DECODE_SIDE,
    PERCEPTUAL,
    bytes_digest,
    perceptual_hash,
    pixels_digest,
    window_phashes,
)
from curate.dedup.reference import ReferenceSet
from curate.filters.base import Batch, Filter

log = logging.getLogger(__name__)
MAX_RADIUS = 12


class GlobalStage(Filter):
    """A filter whose verdict needs every row of the run: score() per row, decided by curate.dedup.run."""

    global_stage: ClassVar[bool] = True

    def verdict(self, rows: Batch) -> pd.Series:
        """Per row only unreadable images; the duplicate decision is global (curate.dedup.run)."""
        return pd.Series([None] * len(rows), index=rows.index, dtype=object)

    def _image_bytes(self, path: Any, member: Any) -> bytes | None:
        from curate.core.images import TarReader, read_image_bytes

        if not hasattr(self, "_tars"):
            self._tars = TarReader()
        try:
            return read_image_bytes(path, member, self._tars)
        except Exception as err:  # noqa: BLE001 - a missing member or file is bad data: image:decode_error
            log.warning("%s: cannot read %s %s: %s", self.name, path, member if isinstance(member, str) else "", err)
            return None

    def _decoded(self, data: bytes | None, min_size: int) -> Any:
        from curate.core.images import decode_rgb

        if data is None:
            return None
        try:
            img = decode_rgb(data, min_size=min_size)
            img.load()
            return img
        except Exception:  # noqa: BLE001 - undecodable bytes are bad data
            return None

    def _rows_images(self, rows: Batch) -> list[bytes | None]:
        return [self._image_bytes(p, m) for p, m in zip(rows["image_path"], rows["image_member"], strict=True)]


def _decode_failures(column: pd.Series) -> pd.Series:
    return pd.Series(np.where(column.isna().to_numpy(), "image:decode_error", None), index=column.index, dtype=object)


@dataclass(kw_only=True)
class DedupExact(GlobalStage):
    """Rows whose image bytes are identical (sha256); with `pixels`, whose decoded pixels are identical."""

    name: ClassVar[str] = "dedup_exact"
    reasons: ClassVar[tuple[str, ...]] = ("duplicate:exact", "image:decode_error")
    pixels: bool = False  # also equal: the same pixels in other bytes (PNG vs a lossless re-save, metadata)

    def score(self, rows: Batch) -> pd.DataFrame:
        datas = self._rows_images(rows)
        scores = {"image_sha256": [None if d is None else bytes_digest(d) for d in datas]}
        if self.pixels:
            images = [self._decoded(d, 0) for d in datas]
            scores["pixel_sha256"] = [None if im is None else pixels_digest(im) for im in images]
        return pd.DataFrame(scores, index=rows.index)

    def verdict(self, rows: Batch) -> pd.Series:
        return _decode_failures(rows[self.digest_column()])

    def digest_column(self) -> str:
        return "pixel_sha256" if self.pixels else "image_sha256"


def _perceptual(stage: GlobalStage, rows: Batch, kind: str, windows: bool = False) -> pd.DataFrame:
    """The `kind` hash of each row (and its crop-window pHashes). A hash an earlier stage already computed is
    kept, not decoded again (decontaminate and dedup_near both need the pHash; every stage decodes the same way,
    at DECODE_SIDE, so the value is the same)."""
    # Only an integer column is reused: through a float64 column (Arrow to pandas with nulls) 64 bits do not survive.
    known = rows[kind].tolist() if kind in rows.columns and rows[kind].dtype != float else [None] * len(rows)
    values: list = [v if isinstance(v, (int, np.integer)) else None for v in known]
    blobs: list = [None] * len(rows)
    where = [i for i, v in enumerate(values) if windows or v is None]
    for i in where:
        image = stage._decoded(
            stage._image_bytes(rows["image_path"].iloc[i], rows["image_member"].iloc[i]), DECODE_SIDE
        )
        if image is not None:
            values[i] = perceptual_hash(image, kind)
            blobs[i] = window_phashes(image).tobytes() if windows else None
    columns = {kind: pd.array(values, dtype="Int64")}
    if windows:
        columns["phash_windows"] = blobs
    return pd.DataFrame(columns, index=rows.index)


def _check_radius(name: str, radius: int) -> None:
    if not 0 <= radius <= MAX_RADIUS:
        raise ConfigError(
            f"{name}.radius {radius}: valid 0..{MAX_RADIUS} bits of 64 (the banded index splits the hash into "
            f"radius + 1 bands; past a radius of about 4 its candidates grow much faster than the rows)"
        )


@dataclass(kw_only=True)
class DedupNear(GlobalStage):
    """Rows whose 64-bit perceptual hash is within `radius` bits of a kept row's (re-encodes, resizes, small
    crops, recaptioned copies). The caption plays no part."""

    name: ClassVar[str] = "dedup_near"
    reasons: ClassVar[tuple[str, ...]] = ("duplicate:near", "image:decode_error")
    hash: str = "phash"  # phash | dhash
    radius: int = 4  # README "Deduplication": the measured distances of planted variants and distinct photos
    partitions: int = 0  # Ray tasks per band (0: one per ~2M hashes); bounds each task's memory
    # Also find crops of up to 10%: every row's 225 crop-window pHashes are looked up among the full-image hashes
    # within `crop_radius` (phash only; ~60 ms more per image on one core, kept in dedup/windows/).
    crop_windows: bool = False
    crop_radius: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hash not in PERCEPTUAL:
            raise ConfigError(f"dedup_near.hash {self.hash!r}; valid: {', '.join(PERCEPTUAL)}")
        _check_radius(self.name, self.radius)
        if self.partitions < 0:
            raise ConfigError("dedup_near.partitions must be >= 0 (0 = automatic)")
        if self.crop_windows and self.hash != "phash":
            raise ConfigError("dedup_near.crop_windows works with hash: phash only")
        _check_radius(self.name, self.crop_radius)

    def score(self, rows: Batch) -> pd.DataFrame:
        return _perceptual(self, rows, self.hash, windows=self.crop_windows)

    def verdict(self, rows: Batch) -> pd.Series:
        return _decode_failures(rows[self.hash])


@dataclass(kw_only=True)
class DedupSemantic(GlobalStage):
    """SemDeDup (Abbas et al. 2023) on the CLIP image embeddings the clip_score stage saves: k-means, then rows
    whose cosine similarity to a kept row of their cluster is at least 1 - eps."""

    name: ClassVar[str] = "dedup_semantic"
    reasons: ClassVar[tuple[str, ...]] = ("duplicate:semantic",)
    eps: float = 0.05
    clusters: int = 0  # 0: one per ~1000 rows (the within-cluster comparison is quadratic in a cluster's size)
    iterations: int = 20  # k-means (Lloyd) iterations at most
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.eps < 1:
            raise ConfigError("dedup_semantic.eps must be within (0, 1): duplicates have cosine >= 1 - eps")
        if self.clusters < 0 or self.iterations < 1:
            raise ConfigError("dedup_semantic.clusters must be >= 0 (0 = automatic), iterations >= 1")

    def score(self, rows: Batch) -> pd.DataFrame:
        return pd.DataFrame(index=rows.index)


@dataclass(kw_only=True)
class Decontaminate(GlobalStage):
    """Rows whose image is within `radius` bits (perceptual hash) of an image of a reference set, or identical
    to one, or (with `eps`) whose CLIP image embedding has cosine >= 1 - eps with one's: `contaminated:<set>`,
    `dup_of` = `<set>:<image>`."""

    name: ClassVar[str] = "decontaminate"
    reasons: ClassVar[tuple[str, ...]] = ("contaminated:<set>", "image:decode_error")
    sets: tuple[ReferenceSet, ...] = field(default_factory=tuple)
    hash: str = "phash"
    radius: int = 4
    eps: float | None = None  # also by CLIP embedding (the clip_score stage's model); None: by hash only

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps is not None and not 0 < self.eps < 1:
            raise ConfigError("decontaminate.eps must be within (0, 1), or null (match by hash only)")
        if not self.sets:
            raise ConfigError("decontaminate.sets must list at least one reference set")
        if self.hash not in PERCEPTUAL:
            raise ConfigError(f"decontaminate.hash {self.hash!r}; valid: {', '.join(PERCEPTUAL)}")
        _check_radius(self.name, self.radius)
        names = [s.name for s in self.sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"decontaminate.sets: names must be unique, got {names}")

    def preflight(self) -> None:
        from curate.dedup.reference import reference_files

        for ref in self.sets:
            reference_files(ref)  # a missing folder or annotation file fails before Ray starts

    def artifacts(self) -> list[str]:
        """The annotation files and shards (their content is part of the run identity); a folder by name."""
        return [x for ref in self.sets for x in (ref.folder, ref.coco_json, *ref.shards) if x]

    def score(self, rows: Batch) -> pd.DataFrame:
        return _perceptual(self, rows, self.hash)

    def verdict(self, rows: Batch) -> pd.Series:
        return _decode_failures(rows[self.hash])
