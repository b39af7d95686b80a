"""Issue 17 acceptance, planted duplicates (slow): every original photo of ../shared/data with a byte copy, a JPEG
re-encode (q30-q95), a resize (0.5-2x), a crop (<= 10%), a mirror image and a recaptioned copy, through a real
`curate filter` run with dedup_exact and dedup_near (pHash, default radius 4, crop windows on; downloads not
resized). The near tier (exact + near stages, as a run applies them) must find >= 95% of every variant but flips,
and >= 99% of what it marks must be a true duplicate (a merged flip counts as wrong). `make bench` (P7) reports
the same figures beside Data-Juicer's."""

from __future__ import annotations

import pytest

from curate.commands.bench.dedup import (
    ACCEPT_PRECISION,
    ACCEPT_RECALL,
    NEAR_TIER_VARIANTS,
    planted_measurement,
    table_lines,
)


@pytest.mark.slow
def test_near_tier_finds_the_planted_duplicates(shared_data, tmp_path):
    result = planted_measurement(shared_data, tmp_path, per_variant=None)
    print("\n" + "\n".join(table_lines(result)))
    print(f"{result['samples']} samples in {result['wall_s']:.1f} s ({result['samples_per_s']:.1f} samples/s)")
    print("missed:", result["misses"], "\nfalse merges:", result["false_merges"])
    assert result["samples"] == 7 * result["originals"] == 707  # every original got all six variants
    assert not result["not_deduplicated"], result["not_deduplicated"]  # every planted image downloaded and decoded
    near = result["tiers"]["near"]
    for variant in NEAR_TIER_VARIANTS:
        assert near["per_variant"][variant]["recall"] >= ACCEPT_RECALL, (variant, result["misses"])
    assert near["overall"]["precision"] >= ACCEPT_PRECISION, result["false_merges"]
    # the exact tier alone: byte copies and recaptioned copies, and nothing wrong
    exact = result["tiers"]["exact"]
    assert exact["per_variant"]["copy"]["recall"] == exact["per_variant"]["recaption"]["recall"] == 1.0
    assert exact["overall"]["precision"] == 1.0
