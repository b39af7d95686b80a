"""All pairs of distinct 64-bit hashes within a Hamming radius, on Ray: one task per (band, partition of band
values), each sorting only its partition (curate.dedup.bands). The hashes travel once through Ray's object
store (8 bytes each); at most `in_flight` tasks run at once, so the memory of the search is bounded by the
partition size, not by the number of tasks."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from curate.dedup.bands import band_spans, matches_in_index, pairs_in_band, unique_pairs
from curate.dedup.tasks import run_tasks, shared
from curate.ledger.embeddings import WINDOWS, read_part

log = logging.getLogger(__name__)
HASHES_PER_PARTITION = 2_000_000


def partition_count(hashes: int, requested: int = 0) -> int:
    return requested or max(1, math.ceil(hashes / HASHES_PER_PARTITION))


def near_edges(
    hashes: np.ndarray, radius: int, partitions: int = 0, in_flight: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) for every pair i < j of `hashes` (distinct values) within `radius`: one task per band and
    partition (curate.dedup.tasks)."""
    started = time.perf_counter()
    spans = band_spans(radius)
    count = partition_count(len(hashes), partitions)
    ref = shared(np.ascontiguousarray(hashes, dtype=np.int64)) if len(hashes) else None
    calls = [(ref, radius, span, count, p) for span in spans for p in range(count)] if len(hashes) else []
    found = run_tasks(pairs_in_band, calls, in_flight)
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    i, j, d = unique_pairs(*(np.concatenate(parts) for parts in zip(*found, strict=True)))
    log.info(
        "near: %d distinct hashes, radius %d: %d bands x %d partitions, %d pairs in %.1f s",
        len(hashes),
        radius,
        len(spans),
        count,
        len(i),
        time.perf_counter() - started,
    )
    return i, j, d


def _part_window_matches(
    path: str, row_ids: np.ndarray, hashes: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_id, index of the matched distinct hash, distance) for the windows of one part's rows."""
    ids, windows = read_part(Path(path), row_ids, WINDOWS)
    if not len(ids):
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    q, x, d = matches_in_index(windows.ravel(), hashes, radius)
    return unique_pairs(ids[q // windows.shape[1]], x, d)


def window_matches(
    paths: list[Path], row_ids: np.ndarray, hashes: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop matches: (row_id, distinct hash index, distance) wherever one of a row's crop windows lies within
    `radius` of a full-image hash. One task per windows part (curate.dedup.tasks)."""
    started = time.perf_counter()
    ids_ref, hashes_ref = shared(row_ids), shared(np.ascontiguousarray(hashes, np.int64))
    found = run_tasks(_part_window_matches, [(str(p), ids_ref, hashes_ref, radius) for p in paths])
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    r, x, d = (np.concatenate(parts) for parts in zip(*found, strict=True))
    log.info("near: crop windows matched %d (row, hash) pairs in %.1f s", len(r), time.perf_counter() - started)
    return r, x, d
