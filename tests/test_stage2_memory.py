"""Stage 2 at corpus scale (issue 15): the peak memory of `curate build` and `curate mix` (every process of the
run's tree) does not grow with the input or the budget. Builds of 20k and 100k 256 px samples, a mix of each
with budget = size, and a 1M-sample mix drawn with replacement from the 100k build (the measurement of
`make bench` P6)."""

from __future__ import annotations

import json

import pytest

from curate.commands.bench.stage2 import stage2_scale

pytestmark = pytest.mark.slow
GIB = 1024**3


def test_build_and_mix_memory_is_flat_from_20k_to_100k_samples_and_to_a_1m_budget(tmp_path):
    scale = stage2_scale(tmp_path)
    print(json.dumps(scale, indent=1))
    (small, large), (mix_small, mix_large, mix_big) = scale["builds"], scale["mixes"]
    assert (small["samples"], large["samples"]) == (20_000, 100_000)
    assert large["peak_rss_gib"] <= 1.3 * small["peak_rss_gib"], scale["builds"]
    assert mix_large["peak_rss_gib"] <= 1.3 * mix_small["peak_rss_gib"], scale["mixes"]
    assert mix_big["peak_rss_gib"] < 3 and mix_big["peak_rss_gib"] <= 1.3 * mix_large["peak_rss_gib"], scale["mixes"]
    assert mix_big["sequences"] > mix_large["sequences"] * 9  # the 1M mixture really holds ten times as much
