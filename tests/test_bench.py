"""`curate bench` (issue 9) reports figures beside baselines measured in the same run. No timing is asserted:
these tests check that each part runs, measures what it says and saves it."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, demo_overrides

from curate.bench.report import Figure, table
from curate.bench.settings import load_bench
from curate.errors import ConfigError

BENCH_YAML = REPO / "pipelines" / "bench.yaml"


def test_ratio_goal_and_table():
    met = Figure(part="P3", measure="download", value=90.0, unit="URLs/s", baseline=100.0, baseline_name="x", goal=0.8)
    missed = Figure(part="P1", measure="clip", value=50.0, unit="samples/s", baseline=100.0, goal=0.9, note="why")
    unmeasured = Figure(part="peer", measure="data-juicer", value=None, unit="samples/s", note="not installed")
    assert met.as_dict()["ratio"] == 0.9 and met.as_dict()["meets_goal"] is True
    assert missed.as_dict()["meets_goal"] is False and unmeasured.as_dict()["ratio"] is None
    text = table([met, missed, unmeasured])
    assert "≥ 0.8 met" in text and "≥ 0.9 MISSED" in text and "n/a" in text
    assert "P1 clip: why" in text and "peer data-juicer: not installed" in text


def test_config_is_strict():
    cfg = load_bench(BENCH_YAML)
    assert cfg.metadata_rows == 100_000 and cfg.peer_samples == 5000 and set(cfg.parts) >= {"P1", "P5", "peer"}
    with pytest.raises(ConfigError, match="unknown; valid: P1, P2, P3, P4, P5, peer"):
        load_bench(BENCH_YAML, ["parts=[P9]"])
    with pytest.raises(ConfigError, match="unknown field"):
        load_bench(BENCH_YAML, ["rows=5"])


def test_metadata_and_ocr_parts_report_figures(demo_input, tiny_clip, tmp_path, shared_data):
    """P2 through Ray and P4 on small sizes, through the CLI; bench.json holds both figures."""
    from curate.__main__ import main

    sets = [
        "metadata_rows=3000",
        "ocr_documents=6",
        f"filter_overrides={json.dumps(demo_overrides(demo_input, tiny_clip, tmp_path / 'run'))}",
    ]
    argv = ["bench", str(BENCH_YAML), "--parts", "P2,P4", "--out", str(tmp_path / "bench")]
    assert main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    figures = {f["part"]: f for f in saved["figures"]}
    assert set(figures) == {"P2", "P4"} and saved["machine"]["cpus"] >= 1
    p2, p4 = figures["P2"], figures["P4"]
    assert p2["details"]["rows"] == 3000 and p2["value"] > 0 and p2["baseline"] > 0 and p2["ratio"] > 0
    assert set(p2["details"]["per_filter_rows_per_s_1_core"]) == {"min_side", "max_aspect_ratio", "caption_text",
                                                                  "language"}  # fmt: skip
    assert p4["details"]["samples"] == 6 and p4["value"] > 0 and p4["baseline"] > 0
