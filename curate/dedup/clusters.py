"""Which row of a set of duplicates is kept: the keep rule, and the greedy assignment of every other row to a
kept representative within the tier's distance.

Keep rule (README, "Deduplication"): the largest image (width x height), then the highest CLIP score (rows
without one come last), then the smallest key. Rows are visited in that order; the first row of a group not yet
assigned becomes a representative and takes every unassigned row within the distance of it. So every
duplicate lies within the tier's distance of the row named in its `dup_of` (no chains), and the result does
not depend on chunking, partitioning or the order rows arrived in.
"""

from __future__ import annotations

import numpy as np


def keep_rank(width: np.ndarray, height: np.ndarray, clip: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank of each row under the keep rule (0 = kept first)."""
    area = np.nan_to_num(np.asarray(width, np.float64) * np.asarray(height, np.float64), nan=-1.0)
    clip = np.nan_to_num(np.asarray(clip, np.float64), nan=-np.inf)
    key_order = np.argsort(np.asarray(keys, dtype=object), kind="stable")
    key_rank = np.empty(len(key_order), np.int64)
    key_rank[key_order] = np.arange(len(key_order))
    order = np.lexsort((key_rank, -clip, -area))  # last key sorts first
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _csr(sources: np.ndarray, targets: np.ndarray, values: np.ndarray, size: int):  # noqa: ANN202
    order = np.argsort(sources, kind="stable")
    starts = np.zeros(size + 1, np.int64)
    np.add.at(starts, sources + 1, 1)
    return np.cumsum(starts), targets[order], values[order]


def greedy_clusters(
    group: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Assign rows to representatives.

    group: per row, the id (0..G-1) of its value (rows of one group are at distance 0: the same digest or hash).
    edges: (g1, g2, distance) between distinct groups within the tier's distance, each pair once.
    rank: keep_rank of each row.
    Returns (representative row index per row, -1 for rows kept; distance to the representative, NaN if kept).
    """
    n = len(group)
    rep = np.full(n, -1, np.int64)
    distance = np.full(n, np.nan)
    if n == 0:
        return rep, distance
    groups = int(group.max()) + 1
    members_start, members, _ = _csr(group, np.arange(n, dtype=np.int64), np.zeros(n), groups)
    g1, g2, d = edges
    both = (np.concatenate([g1, g2]), np.concatenate([g2, g1]), np.concatenate([d, d]).astype(np.float64))
    near_start, near, near_d = _csr(*both, groups)
    size = np.diff(members_start)
    degree = np.diff(near_start)
    involved = np.flatnonzero((size[group] > 1) | (degree[group] > 0))  # everything else is alone: kept
    assigned = np.zeros(n, bool)
    for row in involved[np.argsort(rank[involved], kind="stable")]:
        if assigned[row]:
            continue
        assigned[row] = True
        g = group[row]
        same = members[members_start[g] : members_start[g + 1]]
        same = same[~assigned[same]]
        rep[same], distance[same], assigned[same] = row, 0.0, True
        for other, dist in zip(
            near[near_start[g] : near_start[g + 1]], near_d[near_start[g] : near_start[g + 1]], strict=True
        ):
            rows = members[members_start[other] : members_start[other + 1]]
            rows = rows[~assigned[rows]]
            rep[rows], distance[rows], assigned[rows] = row, dist, True
    return rep, distance
