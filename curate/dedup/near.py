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
from curate.ledger.embeddings import WINDOWS, read_part

log = logging.getLogger(__name__)
HASHES_PER_PARTITION = 2_000_000


def partition_count(hashes: int, requested: int = 0) -> int:
    return requested or max(1, math.ceil(hashes / HASHES_PER_PARTITION))


def near_edges(
    hashes: np.ndarray, radius: int, partitions: int = 0, in_flight: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) for every pair i < j of `hashes` (distinct values) within `radius`. Runs on Ray when a
    session is up, else in this process (the same tasks, one after another)."""
    import ray

    started = time.perf_counter()
    spans = band_spans(radius)
    count = partition_count(len(hashes), partitions)
    jobs = [(span, p) for span in spans for p in range(count)]
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if ray.is_initialized() and len(hashes):
        task = ray.remote(num_cpus=1)(pairs_in_band)
        ref = ray.put(np.ascontiguousarray(hashes, dtype=np.int64))
        limit = in_flight or max(1, int(ray.available_resources().get("CPU", 1)))
        pending: list = []
        for span, p in jobs:
            if len(pending) >= limit:
                ready, pending = ray.wait(pending, num_returns=1)
                found += ray.get(ready)
            pending.append(task.remote(ref, radius, span, count, p))
        found += ray.get(pending)
    else:
        found = [pairs_in_band(hashes, radius, span, count, p) for span, p in jobs]
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
    `radius` of a full-image hash. One Ray task per windows part when a session is up."""
    import ray

    started = time.perf_counter()
    calls = [(str(p), row_ids, hashes, radius) for p in paths]
    if ray.is_initialized() and calls:
        task = ray.remote(num_cpus=1)(_part_window_matches)
        ids_ref, hashes_ref = ray.put(row_ids), ray.put(np.ascontiguousarray(hashes, np.int64))
        found = ray.get([task.remote(p, ids_ref, hashes_ref, radius) for p, *_ in calls])
    else:
        found = [_part_window_matches(*c) for c in calls]
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    r, x, d = (np.concatenate(parts) for parts in zip(*found, strict=True))
    log.info("near: crop windows matched %d (row, hash) pairs in %.1f s", len(r), time.perf_counter() - started)
    return r, x, d
