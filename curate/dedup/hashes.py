"""Image fingerprints for deduplication (issue 17): a digest of the bytes, a digest of the decoded pixels, and
64-bit perceptual hashes (pHash, dHash) with their Hamming distance.

A 64-bit hash is stored as a signed int64 (the same 64 bits; Arrow and Parquet have no uint64 in every reader)
and compared as uint64.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

HASH_SIZE = 8  # 8 x 8 = 64 bits
PHASH_SIDE = 32  # pHash: DCT of a 32 x 32 grey image, keep the 8 x 8 lowest frequencies (Zauner 2010)
PERCEPTUAL = ("phash", "dhash")
# JPEGs decode at the smallest DCT scale still >= this on both sides. Decoding at 1/8 scale (64 px) moved the
# hash of a re-encoded copy by 3-7 bits on the demo; from 256 px the LANCZOS reduction to 32 px dominates.
DECODE_SIDE = 256


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: dct(x) = M @ x (the transform scipy.fft.dct(norm='ortho') computes)."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * k * (2 * x + 1) / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(PHASH_SIDE)


def _grey(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(img.convert("L").resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def _pack(bits: np.ndarray) -> int:
    """64 booleans (row-major, first = most significant) as a signed 64-bit int."""
    value = int(np.packbits(bits.astype(np.uint8).ravel()).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def phash(img: Image.Image) -> int:
    """pHash: sign of the 8 x 8 lowest DCT coefficients of a 32 x 32 grey image against their median (the median
    leaves out the DC term, which only says how bright the image is; imagededup's rule)."""
    coefficients = (_DCT @ _grey(img, (PHASH_SIDE, PHASH_SIDE)) @ _DCT.T)[:HASH_SIZE, :HASH_SIZE]
    return _pack(coefficients > np.median(coefficients.ravel()[1:]))


def dhash(img: Image.Image) -> int:
    """dHash: whether each pixel of a 9 x 8 grey image is brighter than its right neighbour."""
    grey = _grey(img, (HASH_SIZE + 1, HASH_SIZE))
    return _pack(grey[:, 1:] > grey[:, :-1])


def perceptual_hash(img: Image.Image, kind: str) -> int:
    if kind == "phash":
        return phash(img)
    if kind == "dhash":
        return dhash(img)
    raise ValueError(f"perceptual hash {kind!r}; valid: {', '.join(PERCEPTUAL)}")


def bytes_digest(data: bytes) -> str:
    """sha256 of the image file as stored (hex)."""
    return hashlib.sha256(data).hexdigest()


def pixels_digest(img: Image.Image) -> str:
    """sha256 of the decoded RGB pixels and the size: equal for a PNG and a lossless re-save of it."""
    rgb = img.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def as_unsigned(hashes: np.ndarray) -> np.ndarray:
    """int64 hashes (as stored) viewed as uint64."""
    return np.ascontiguousarray(hashes, dtype=np.int64).view(np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance between 64-bit hashes (int64 or uint64; broadcasts)."""
    a = np.asarray(a).astype(np.int64, copy=False).view(np.uint64)
    b = np.asarray(b).astype(np.int64, copy=False).view(np.uint64)
    return np.bitwise_count(a ^ b).astype(np.int64)


WINDOW_STEP = 0.025  # crop windows: cuts on a 2.5% grid ...
WINDOW_CUT = 0.10  # ... removing up to 10% of each axis, split between its two sides in every way
WINDOW_THUMBNAIL = 128  # every window is resampled from one grey thumbnail of this side (<= DECODE_SIDE)


def crop_windows(step: float = WINDOW_STEP, cut: float = WINDOW_CUT) -> list[tuple[float, float, float, float]]:
    """(left, right, top, bottom) cuts, as fractions of the side: 15 per axis, 225 windows at the defaults."""
    ticks = np.arange(0, cut + 1e-9, step)
    axis = [(a, b) for a in ticks for b in ticks if a + b <= cut + 1e-9]
    return [(left, right, top, bottom) for left, right in axis for top, bottom in axis]


WINDOWS = crop_windows()


def window_phashes(img: Image.Image) -> np.ndarray:
    """pHash of each crop window (WINDOWS) of the image, as int64. A crop of up to 10% of another image has a
    full-image pHash within a couple of bits of one of that image's windows, where its own full-image pHash can
    be 20+ bits away (README, "Deduplication": the measured distances)."""
    side = WINDOW_THUMBNAIL
    grey = img.convert("L").resize((side, side), Image.Resampling.LANCZOS)
    cells = np.empty((len(WINDOWS), PHASH_SIDE, PHASH_SIDE))
    for i, (left, right, top, bottom) in enumerate(WINDOWS):
        box = (left * side, top * side, side - right * side, side - bottom * side)
        cells[i] = np.asarray(grey.resize((PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS, box=box), np.float64)
    coefficients = (_DCT @ cells @ _DCT.T)[:, :HASH_SIZE, :HASH_SIZE].reshape(len(WINDOWS), -1)
    bits = coefficients > np.median(coefficients[:, 1:], axis=1, keepdims=True)
    packed = np.packbits(bits.astype(np.uint8), axis=1).view(">u8").ravel()
    return packed.astype(np.uint64).view(np.int64)
