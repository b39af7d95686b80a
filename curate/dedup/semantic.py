"""SemDeDup (Abbas et al. 2023, "SemDeDup: Data-efficient learning at web-scale through semantic deduplication")
on the CLIP image embeddings of a filter run, on Ray.

1. Spherical k-means over the unit embeddings (Lloyd iterations; each iteration is one Ray task per embeddings
   part returning per-cluster sums, so no process holds every embedding).
2. Every row goes to its nearest centroid; clusters are dealt into groups, one Ray task per group.
3. Within each cluster, pairs with cosine similarity >= 1 - eps are duplicate candidates (the paper's rule;
   the keep rule is curate.dedup.clusters', not the paper's distance to the centroid).
Initial centroids: `clusters` rows drawn with numpy's seeded generator from the sorted row ids, so the result
does not depend on chunking or arrival order.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from curate.dedup.tasks import run_tasks, shared
from curate.ledger.embeddings import read_part

log = logging.getLogger(__name__)
ROWS_PER_CLUSTER = 1000  # clusters: 0 -> one per this many rows; the pair search is quadratic in a cluster


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def _rows(path: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    got, vectors = read_part(Path(path), ids)
    return got, _normalize(vectors)


def _part_ids(path: str, ids: np.ndarray) -> np.ndarray:
    return read_part(Path(path), ids)[0]


def _part_sums(path: str, ids: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, x = _rows(path, ids)
    sums = np.zeros_like(centroids, dtype=np.float64)
    counts = np.zeros(len(centroids), np.int64)
    if len(x):
        nearest = np.argmax(x @ centroids.T, axis=1)
        np.add.at(sums, nearest, x)
        counts = np.bincount(nearest, minlength=len(centroids))
    return sums, counts


def _part_assign(path: str, ids: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    got, x = _rows(path, ids)
    nearest = np.argmax(x @ centroids.T, axis=1) if len(x) else np.empty(0, np.int64)
    return got, nearest.astype(np.int64)


def _group_pairs(
    paths: list[str], ids: np.ndarray, cluster_of: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (row_id a < b, 1 - cosine) within each cluster of this group, cosine >= 1 - eps."""
    got_ids, got_x = [], []
    for path in paths:
        i, x = _rows(path, ids)
        got_ids.append(i)
        got_x.append(x)
    row_ids = np.concatenate(got_ids)
    x = np.concatenate(got_x) if got_x else np.empty((0, 1), np.float32)
    clusters = cluster_of[np.searchsorted(ids, row_ids)]
    found_a, found_b, found_d = [], [], []
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        if len(members) < 2:
            continue
        similarity = x[members] @ x[members].T
        a, b = np.nonzero(np.triu(similarity >= 1 - eps, k=1))
        found_a.append(row_ids[members[a]])
        found_b.append(row_ids[members[b]])
        found_d.append(np.clip(1 - similarity[a, b], 0, None).astype(np.float64))
    if not found_a:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0)
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    return np.minimum(a, b), np.maximum(a, b), np.concatenate(found_d)


def semantic_edges(
    paths: list[Path], row_ids: np.ndarray, *, eps: float, clusters: int, iterations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_id a, row_id b, 1 - cosine) of the duplicate candidates among `row_ids` (sorted) whose embeddings
    are in the parts at `paths`."""
    import ray

    started = time.perf_counter()
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    parts = [str(p) for p in paths]
    ids_ref = shared(row_ids)
    listed = run_tasks(_part_ids, [(p, ids_ref) for p in parts])
    embedded = np.sort(np.concatenate(listed)) if listed else np.empty(0, np.int64)
    if len(embedded) < 2:
        return empty
    k = min(len(embedded), clusters or max(1, math.ceil(len(embedded) / ROWS_PER_CLUSTER)))
    seeds = np.sort(np.random.default_rng(seed).choice(embedded, size=k, replace=False))
    centroids = np.concatenate([x for _, x in run_tasks(_rows, [(p, seeds) for p in parts]) if len(x)])
    done = 0
    for _ in range(iterations):
        done += 1
        results = run_tasks(_part_sums, [(p, ids_ref, centroids) for p in parts])
        sums = sum(s for s, _ in results)
        counts = sum(c for _, c in results)
        moved = _normalize(np.where(counts[:, None] > 0, sums, centroids)).astype(np.float32)
        shift = float(np.max(np.linalg.norm(moved - centroids, axis=1)))
        centroids = moved
        if shift < 1e-4:
            break
    assigned = run_tasks(_part_assign, [(p, ids_ref, centroids) for p in parts])
    ids = np.concatenate([a for a, _ in assigned])
    cluster_of = np.concatenate([c for _, c in assigned])
    order = np.argsort(ids)
    ids, cluster_of = ids[order], cluster_of[order]
    groups = min(k, 4 * max(1, int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1))
    calls = []
    for g in range(groups):
        mine = cluster_of % groups == g
        if mine.sum() > 1:
            calls.append((parts, ids[mine], cluster_of[mine], eps))
    found = run_tasks(_group_pairs, calls)
    if not found:
        return empty
    a, b, d = (np.concatenate(x) for x in zip(*found, strict=True))
    log.info(
        "semantic: %d embeddings, %d clusters (%d k-means iterations), %d pairs with cosine >= %.3f in %.1f s",
        len(ids),
        k,
        done,
        len(a),
        1 - eps,
        time.perf_counter() - started,
    )
    return a, b, d
