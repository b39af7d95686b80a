"""Issue 17 acceptance, scale (slow): 1M synthetic 64-bit hashes with 10k planted near pairs (1..4 bits apart) go
through the near stage as a filter run uses it (near_edges as Ray tasks on a local 2-CPU session, then the keep
rule), in a child process whose whole tree, Ray's processes included, stays under 2 GiB (RSS summed over the
processes, which overstates: PSS is reported too). On a 20k subset the banded search finds exactly the pairs brute
force finds."""

from __future__ import annotations

import json

import pytest

from curate.commands.bench.dedup import SCALE_BOUND_GIB, scale_measurement


@pytest.mark.slow
def test_a_million_hashes_in_bounded_memory(tmp_path):
    scale = scale_measurement(1_000_000, 10_000, 4, 20_000, tmp_path, timeout=900)
    print(json.dumps(scale, indent=1))
    assert not scale["timed_out"], scale
    assert scale["planted_found"] == scale["planted_pairs"] == 10_000
    assert scale["rows_rejected"] >= 10_000
    assert scale["peak_rss_gib"] < SCALE_BOUND_GIB, scale["top"]
    assert scale["peak_pss_gib"] < SCALE_BOUND_GIB, scale["top"]
    sub = scale["subset"]
    assert sub["hashes"] == 20_000 and sub["planted_pairs_inside"] == 2000
    assert sub["equal"] and sub["banded_pairs"] == sub["brute_force_pairs"] >= 2000, sub
