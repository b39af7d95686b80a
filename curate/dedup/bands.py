"""Candidate pairs within a Hamming radius without comparing all pairs: the banded (multi-index) split.

Cut the 64 bits into radius + 1 bands. Two hashes within the radius differ in at most `radius` bits, so at least
one band holds none of them (pigeonhole): every pair within the radius is equal on some band. Each band is
searched on its own (one Ray task per band and partition of band values, `curate.dedup.near`): sort the
partition's hashes by band value, compare only hashes with the same band value. Random pairs collide on a band
of b bits with probability 2^-b, so the candidates grow like N^2 * (radius + 1) / 2^b; with 64-bit hashes that
stays close to linear up to a radius of about 4 at a million hashes (README, "Deduplication").
"""

from __future__ import annotations

import numpy as np

from curate.dedup.hashes import as_unsigned

BITS = 64


def band_spans(radius: int) -> list[tuple[int, int]]:
    """(shift, width) of each of the radius + 1 bands, as equal as possible, covering all 64 bits."""
    if not 0 <= radius < BITS:
        raise ValueError(f"radius {radius} must be in 0..{BITS - 1}")
    count = radius + 1
    widths = [BITS // count + (i < BITS % count) for i in range(count)]
    spans, shift = [], BITS
    for width in widths:
        shift -= width
        spans.append((shift, width))
    return spans


def band_values(hashes: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """The band's bits of each hash, as uint64."""
    shift, width = span
    mask = np.uint64((1 << width) - 1)
    return (as_unsigned(hashes) >> np.uint64(shift)) & mask


def pairs_in_band(
    hashes: np.ndarray, radius: int, span: tuple[int, int], partitions: int = 1, partition: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i < j) of `hashes` (distinct values) equal on this band and within `radius`, restricted to
    the band values that fall in `partition` of `partitions`. Returns (i, j, distance)."""
    values = band_values(hashes, span)
    where = np.flatnonzero(values % np.uint64(partitions) == np.uint64(partition)) if partitions > 1 else None
    index = np.arange(len(hashes), dtype=np.int64) if where is None else where.astype(np.int64)
    values = values[index]
    order = np.argsort(values, kind="stable")
    index, values = index[order], values[order]
    bits = as_unsigned(hashes)[index]
    found_i, found_j, found_d = [], [], []
    # Compare each hash with the next `step` ones of the same band value, for growing steps, keeping only the
    # positions whose run is still long enough: the work is the sum of run sizes squared, never all pairs.
    alive = np.arange(len(index), dtype=np.int64)
    step = 1
    while len(alive):
        alive = alive[alive + step < len(index)]
        alive = alive[values[alive + step] == values[alive]]
        if not len(alive):
            break
        distance = np.bitwise_count(bits[alive] ^ bits[alive + step]).astype(np.int64)
        close = distance <= radius
        a, b = index[alive[close]], index[alive[close] + step]
        found_i.append(np.minimum(a, b))
        found_j.append(np.maximum(a, b))
        found_d.append(distance[close])
        step += 1
    if not found_i:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def unique_pairs(i: np.ndarray, j: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs found in several bands (or windows), once each with their smallest distance, sorted by (i, j)."""
    if not len(i):
        return i, j, d
    by_distance = np.argsort(d, kind="stable")
    i, j, d = i[by_distance], j[by_distance], d[by_distance]
    codes = np.stack([i, j], axis=1)
    codes, first = np.unique(codes, axis=0, return_index=True)
    return codes[:, 0], codes[:, 1], d[first]


def brute_force_pairs(hashes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) within radius by comparing everything: the reference the banded search is tested
    against (quadratic; small inputs only)."""
    bits = as_unsigned(hashes)
    found_i, found_j, found_d = [], [], []
    for start in range(len(bits)):
        distance = np.bitwise_count(bits[start + 1 :] ^ bits[start]).astype(np.int64)
        close = np.flatnonzero(distance <= radius)
        found_i.append(np.full(len(close), start, np.int64))
        found_j.append(close + start + 1)
        found_d.append(distance[close])
    if not found_i:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


class BandIndex:
    """Hashes indexed by band: each band sorted once, so any number of query batches are looked up with binary
    searches (crop windows against the run's hashes, rows against a reference set)."""

    def __init__(self, hashes: np.ndarray, radius: int) -> None:
        self.hashes, self.radius = np.ascontiguousarray(hashes, dtype=np.int64), radius
        self.bands = []
        for span in band_spans(radius):
            values = band_values(self.hashes, span)
            order = np.argsort(values, kind="stable")
            self.bands.append((span, order, values[order]))

    def matches(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query position, index position, distance) of every query within the radius of an indexed hash; a
        pair equal on several bands comes once per band (unique_pairs folds them)."""
        found_q, found_x, found_d = [], [], []
        q_bits, x_bits = as_unsigned(queries), as_unsigned(self.hashes)
        for span, order, x_sorted in self.bands:
            q_bands = band_values(queries, span)
            lo = np.searchsorted(x_sorted, q_bands, "left")
            counts = np.searchsorted(x_sorted, q_bands, "right") - lo
            hit = np.flatnonzero(counts)
            if not len(hit):
                continue
            q = np.repeat(hit, counts[hit])
            starts = np.repeat(np.cumsum(counts[hit]) - counts[hit], counts[hit])
            x = order[np.repeat(lo[hit], counts[hit]) + np.arange(len(q)) - starts]
            distance = np.bitwise_count(q_bits[q] ^ x_bits[x]).astype(np.int64)
            close = distance <= self.radius
            found_q.append(q[close])
            found_x.append(x[close])
            found_d.append(distance[close])
        if not found_q:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        return np.concatenate(found_q), np.concatenate(found_x), np.concatenate(found_d)

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query: the closest indexed hash within the radius (-1 if none; the lowest position on a tie) and
        its distance (0 where none)."""
        best = np.full(len(queries), -1, np.int64)
        best_d = np.zeros(len(queries), np.int64)
        q, x, d = self.matches(queries)
        if len(q):
            order = np.lexsort((x, d, q))  # by query, then distance, then index position
            q, x, d = q[order], x[order], d[order]
            first = np.r_[True, q[1:] != q[:-1]]
            best[q[first]], best_d[q[first]] = x[first], d[first]
        return best, best_d


def matches_in_index(queries: np.ndarray, index: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query position, index position, distance) of every query hash within `radius` of an index hash."""
    return BandIndex(index, radius).matches(queries)
