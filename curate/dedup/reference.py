"""Reference sets for decontamination: list a set's images (a folder, tar shards, or a COCO annotation file and
its image folder), fingerprint each once, and match rows against them.

The fingerprints of a set are cached in `<cache>/<name>-<listing digest>.parquet`: the listing digest covers
every image's name and size, so an edited set is hashed again and an unchanged one never twice.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic
from curate.core.errors import ConfigError
from curate.core.images import TarReader, decode_rgb, read_image_bytes
from curate.dedup.bands import BandIndex
from curate.dedup.hashes import DECODE_SIDE, bytes_digest, perceptual_hash

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
Listing = list[tuple[str, int]]  # (image id: path, or tar path + "::" + member, size in bytes)


SET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True, kw_only=True)
class ReferenceSet:
    """Images a run must not contain (a benchmark's test split). Exactly one of folder, shards, coco_json."""

    name: str  # the reason is contaminated:<name>
    folder: str | None = None  # every image file below it
    shards: tuple[str, ...] = ()  # tar shards (paths or globs); every image member
    coco_json: str | None = None  # a COCO annotation file: its images[].file_name, under `images`
    images: str | None = None  # the image folder of coco_json

    def __post_init__(self) -> None:
        if not SET_NAME.fullmatch(self.name):
            raise ConfigError(f"reference set name {self.name!r}: lowercase letters, digits, _ . - only")
        given = [k for k in ("folder", "shards", "coco_json") if getattr(self, k)]
        if len(given) != 1:
            raise ConfigError(f"reference set {self.name}: give exactly one of folder, shards, coco_json")
        if self.coco_json and not self.images:
            raise ConfigError(f"reference set {self.name}: coco_json needs `images` (the folder of its images)")


@dataclass(frozen=True, kw_only=True)
class Decontamination:
    """`curate build`'s decontaminate block: refuse records whose image is in a reference set (a benchmark's test
    split), as the filter pipeline's decontaminate stage does for rows."""

    sets: tuple[ReferenceSet, ...]
    hash: str = "phash"
    radius: int = 4

    def __post_init__(self) -> None:
        from curate.dedup.hashes import PERCEPTUAL

        if not self.sets:
            raise ConfigError("decontaminate.sets must list at least one reference set")
        if self.hash not in PERCEPTUAL:
            raise ConfigError(f"decontaminate.hash {self.hash!r}; valid: {', '.join(PERCEPTUAL)}")
        if not 0 <= self.radius <= 12:
            raise ConfigError(f"decontaminate.radius {self.radius}: valid 0..12 bits of 64")


def reference_files(ref: ReferenceSet) -> Listing:
    """Every image of the set, sorted; raises ConfigError when the set's files are missing or hold no image."""
    images: Listing = []
    if ref.folder:
        root = Path(ref.folder)
        if not root.is_dir():
            raise ConfigError(f"reference set {ref.name}: folder {root} does not exist")
        images = [(str(p), p.stat().st_size) for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    elif ref.shards:
        paths = sorted({p for pattern in ref.shards for p in (glob.glob(pattern) or [pattern])})
        for path in paths:
            if not Path(path).is_file():
                raise ConfigError(f"reference set {ref.name}: shard {path} does not exist")
            with tarfile.open(path) as tar:
                images += [
                    (f"{path}::{m.name}", m.size)
                    for m in tar.getmembers()
                    if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES
                ]
    else:
        annotations = Path(ref.coco_json)
        if not annotations.is_file():
            raise ConfigError(f"reference set {ref.name}: coco_json {annotations} does not exist")
        names = sorted({im["file_name"] for im in json.loads(annotations.read_text())["images"]})
        root = Path(ref.images)
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            raise ConfigError(
                f"reference set {ref.name}: {len(missing)} of the {len(names)} images of {annotations} are not in "
                f"{root} (first: {missing[0]})"
            )
        images = [(str(root / n), (root / n).stat().st_size) for n in names]
    if not images:
        raise ConfigError(f"reference set {ref.name} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return images


def _read(image_id: str, tars: TarReader) -> bytes:
    path, _, member = image_id.partition("::")
    return read_image_bytes(path, member or None, tars)


def reference_table(ref: ReferenceSet, kind: str, cache: Path) -> pa.Table:
    """(ref_id, sha256, <kind>) of every image of the set; undecodable images are left out with a warning."""
    listing = reference_files(ref)
    digest = hashlib.sha256(json.dumps([kind, listing]).encode()).hexdigest()[:16]
    path = cache / f"{ref.name}-{digest}.parquet"
    if path.exists():
        return pq.read_table(path)
    log.info("decontaminate: hashing the %d images of reference set %s", len(listing), ref.name)
    ids, sources, digests, hashes = [], [], [], []
    tars = TarReader()
    for image_id, _ in listing:
        try:
            data = _read(image_id, tars)
            value = perceptual_hash(decode_rgb(data, min_size=DECODE_SIDE), kind)
        except Exception as err:  # noqa: BLE001 - a broken reference image cannot contaminate anything
            log.warning("reference set %s: cannot decode %s (%s); left out", ref.name, image_id, err)
            continue
        ids.append(f"{ref.name}:{Path(image_id.split('::')[-1]).name}")
        sources.append(
            str(Path(image_id.split("::")[0]).resolve())
            + ("::" + image_id.split("::", 1)[1] if "::" in image_id else "")
        )
        digests.append(bytes_digest(data))
        hashes.append(value)
    table = pa.table({"ref_id": ids, "source": sources, "sha256": digests, kind: pa.array(hashes, pa.int64())})
    write_parquet_atomic(path, table)
    return table


def nearest_reference(
    hashes: np.ndarray,
    digests: list[str | None],
    reference: pa.Table,
    kind: str,
    radius: int,
    *,
    index: tuple[BandIndex, dict[str, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the index of the closest reference image within `radius` (or with identical bytes), -1 if
    none; and the Hamming distance to it. Candidates come from the reference's band index (no all-pairs);
    `index` (reference_index) is that index built once, for looking up many batches against one set."""
    bands, by_digest = index or reference_index(reference, kind, radius)
    best, best_d = bands.nearest(np.asarray(hashes, np.int64))
    for row, d in enumerate(digests):
        if d is not None and d in by_digest:
            best[row], best_d[row] = by_digest[d], 0
    return best, best_d


def reference_index(reference: pa.Table, kind: str, radius: int) -> tuple[BandIndex, dict[str, int]]:
    """The band index of a reference table's hashes, and its byte digests -> row."""
    digests = {d: i for i, d in enumerate(reference.column("sha256").to_pylist())}
    return BandIndex(reference.column(kind).to_numpy(), radius), digests


class ReferenceScreen:
    """Checks one image at a time against reference sets (curate build's decontaminate): picklable, so Ray
    workers get it with their other arguments."""

    def __init__(self, config: Decontamination, cache: Path) -> None:
        self.kind, self.radius = config.hash, config.radius
        self.tables = [(ref.name, reference_table(ref, config.hash, cache)) for ref in config.sets]
        self.indexes = [reference_index(table, config.hash, config.radius) for _, table in self.tables]

    def __call__(self, data: bytes) -> tuple[str, str, int] | None:
        """(reason, reference image id, distance) of the first set holding the image, or None."""
        try:
            value = perceptual_hash(decode_rgb(data, min_size=DECODE_SIDE), self.kind)
        except Exception:  # noqa: BLE001 - an undecodable image is refused elsewhere, as image_decode_error
            return None
        for (name, table), index in zip(self.tables, self.indexes, strict=True):
            query = np.array([value], np.int64)
            best, dist = nearest_reference(query, [bytes_digest(data)], table, self.kind, self.radius, index=index)
            if best[0] >= 0:
                return f"contaminated:{name}", table.column("ref_id")[int(best[0])].as_py(), int(dist[0])
        return None


def _embed_sources(clip, sources: list[str]) -> np.ndarray:  # noqa: ANN001 - curate.filters.clip_score.ClipScore
    """Runs where the CLIP model may load (a Ray task: the driver never imports torch)."""
    datas, tars = [], TarReader()
    for source in sources:
        try:
            datas.append(_read(source, tars))
        except OSError:
            datas.append(None)
    return clip.embed_images(datas)


def reference_embeddings(ref: ReferenceSet, table: pa.Table, clip, cache: Path) -> np.ndarray:  # noqa: ANN001
    """CLIP image embeddings (float32, unit rows) of a reference table's images, computed once per set and model
    in a Ray task, cached beside the hashes."""
    import ray

    model = hashlib.sha256(json.dumps([clip.model, str(clip.pretrained)]).encode()).hexdigest()[:12]
    listing = hashlib.sha256("\n".join(table.column("sha256").to_pylist()).encode()).hexdigest()[:12]
    path = cache / f"{ref.name}-{listing}-clip-{model}.npy"
    if path.exists():
        return np.load(path)
    log.info(
        "decontaminate: embedding the %d images of reference set %s with %s", table.num_rows, ref.name, clip.model
    )
    sources = table.column("source").to_pylist()
    if ray.is_initialized():
        vectors = ray.get(ray.remote(num_cpus=1)(_embed_sources).remote(clip, sources))
    else:
        vectors = _embed_sources(clip, sources)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, vectors.astype(np.float32))
    tmp.replace(path)
    return vectors
