"""The banded index finds exactly the pairs brute force finds, and the keep rule is deterministic (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from curate.dedup.bands import band_spans, brute_force_pairs, matches_in_index, pairs_in_band, unique_pairs
from curate.dedup.clusters import greedy_clusters, keep_rank
from curate.dedup.hashes import hamming
from curate.dedup.near import near_edges


def _planted(n: int, pairs: int, radius: int, seed: int = 0) -> np.ndarray:
    """Random hashes plus `pairs` copies of some of them with 1..radius+2 bits flipped (some beyond the radius)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=n, dtype=np.int64)
    copies = base[rng.integers(0, n, size=pairs)].view(np.uint64).copy()
    for i in range(pairs):
        for bit in rng.choice(64, size=int(rng.integers(1, radius + 3)), replace=False):
            copies[i] ^= np.uint64(1) << np.uint64(bit)
    return np.unique(np.concatenate([base, copies.view(np.int64)]))


@pytest.mark.parametrize("radius", [0, 2, 4, 7])
def test_bands_cover_all_bits_and_pigeonhole(radius):
    spans = band_spans(radius)
    assert len(spans) == radius + 1
    assert sum(w for _, w in spans) == 64
    covered = sorted(bit for shift, width in spans for bit in range(shift, shift + width))
    assert covered == list(range(64))


@pytest.mark.parametrize(("radius", "partitions"), [(2, 1), (4, 1), (4, 3), (6, 2)])
def test_banded_search_finds_exactly_the_brute_force_pairs(radius, partitions):
    hashes = _planted(3000, 400, radius)
    expected = set(zip(*(a.tolist() for a in brute_force_pairs(hashes, radius)[:2]), strict=True))
    found = [
        pairs_in_band(hashes, radius, span, partitions, p) for span in band_spans(radius) for p in range(partitions)
    ]
    i, j, d = unique_pairs(*(np.concatenate(x) for x in zip(*found, strict=True)))
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    assert len(expected) >= 100  # the planted pairs within the radius are there
    assert np.array_equal(d, hamming(hashes[i], hashes[j]))
    ni, nj, _ = near_edges(hashes, radius, partitions)  # the same without Ray (no session in this test)
    assert set(zip(ni.tolist(), nj.tolist(), strict=True)) == expected


def test_a_huge_run_of_equal_band_values_is_not_all_pairs_of_the_input():
    """Hashes equal on one band but far apart elsewhere: compared within the run only, none within the radius."""
    rng = np.random.default_rng(1)
    low = rng.integers(0, 1 << 40, size=2000, dtype=np.int64)  # top 24 bits zero: one band value for all
    i, _, _ = pairs_in_band(np.unique(low), 2, band_spans(2)[0])
    assert len(i) == 0


def test_index_matches_equal_brute_force():
    index = _planted(2000, 0, 2, seed=3)
    queries = index[:300] ^ np.int64(0b101)  # 2 bits away from the first 300
    q, x, d = matches_in_index(queries, index, 2)
    q, x, d = unique_pairs(q, x, d)
    brute = {(a, b) for a in range(len(queries)) for b in np.flatnonzero(hamming(index, queries[a]) <= 2).tolist()}
    assert set(zip(q.tolist(), x.tolist(), strict=True)) == brute
    assert {(a, a) for a in range(300)} <= brute


def test_keep_rule_largest_then_clip_then_key():
    rank = keep_rank(
        width=np.array([100, 200, 200, 200]),
        height=np.array([100, 100, 100, 100]),
        clip=np.array([0.9, 0.3, np.nan, 0.3]),
        keys=np.array(["d", "c", "a", "b"], dtype=object),
    )
    assert rank.tolist() == [3, 1, 2, 0]  # b and c tie on size and CLIP: the smaller key first; NaN CLIP last


def test_greedy_assignment_has_no_chains_and_ignores_input_order():
    # groups 0-1-2 in a line (0~1, 1~2, 0 and 2 too far apart); rows 3, 4 share group 3 (an exact copy)
    group = np.array([0, 1, 2, 3, 3])
    edges = (np.array([0, 1]), np.array([1, 2]), np.array([3, 3]))
    rank = np.array([1, 0, 2, 4, 3])  # row 1 is kept first: it takes 0 and 2; row 4 beats row 3
    rep, dist = greedy_clusters(group, edges, rank)
    assert rep.tolist() == [1, -1, 1, 4, -1] and dist[[0, 2, 3]].tolist() == [3, 3, 0]
    rank = np.array([0, 1, 2, 4, 3])  # row 0 first: takes 1 only; 2 is not within reach of 0, so kept
    rep, _ = greedy_clusters(group, edges, rank)
    assert rep.tolist() == [-1, 0, -1, 4, -1]
