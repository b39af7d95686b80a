"""`curate bench` (issue 9) reports figures beside baselines measured in the same run. No timing is asserted:
these tests check that each part runs, measures what it says and saves it."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, demo_overrides

from curate.commands.bench.config import load_bench
from curate.commands.bench.report import Figure, table
from curate.core.errors import ConfigError

BENCH_YAML = REPO / "pipelines" / "bench_demo.yaml"


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
    with pytest.raises(ConfigError, match="unknown; valid: P1, P2, P3, P4, P5, P6, P7, peer"):
        load_bench(BENCH_YAML, ["parts=[P9]"])
    with pytest.raises(ConfigError, match="unknown field"):
        load_bench(BENCH_YAML, ["rows=5"])
    gpu = load_bench(REPO / "pipelines" / "bench_gpu.yaml")  # `make bench-gpu` (issue 20's GPU lines)
    assert [(c.device, c.batch_size, c.decode) for c in gpu.clip] == [("cuda", 256, "cpu"), ("cuda", 256, "device")]
    with pytest.raises(ConfigError, match="decode is cpu or device, device is cpu or cuda"):
        load_bench(BENCH_YAML, ['clip=[{"model": "ViT-B-32", "decode": "gpu"}]'])


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


@pytest.mark.slow
def test_every_part_reports_at_small_sizes(demo_input, tiny_clip, tmp_path, shared_data):
    """All eight parts end to end (P3's download feeding P1 and the peer), at sizes that take a few minutes."""
    from curate.__main__ import main

    clip = [{"model": "curate-tiny-clip", "pretrained": str(tiny_clip), "samples": 4096, "raw_batches": 2}]
    clip += [{**clip[0], "samples": 1024, "decode": "device", "device": "cpu"}]
    sets = [
        f"clip={json.dumps(clip)}",
        "download_urls=400",
        "metadata_rows=5000",
        "ocr_documents=5",
        "memory_rows=[300, 600]",
        "peer_samples=300",
        "stage2_sizes=[400, 800]",
        "stage2_budget=4000",
        "stage2_bare_samples=200",
        f"dedup_shared_data={shared_data}",
        "dedup_planted_per_variant=3",
        "dedup_scale_hashes=20000",
        "dedup_scale_pairs=200",
        "dedup_scale_subset=5000",
        "dedup_scale_radii=[4, 2]",
        f"peer_clip_pretrained={tiny_clip}",
        f"peer_python={REPO / '.venv-dj' / 'bin' / 'python'}",
        f"filter_overrides={json.dumps(demo_overrides(demo_input, tiny_clip, tmp_path / 'run'))}",
    ]
    argv = ["bench", str(BENCH_YAML), "--out", str(tmp_path / "bench")]
    assert main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    figures = json.loads((tmp_path / "bench" / "bench.json").read_text())["figures"]
    by_part: dict[str, list[dict]] = {}
    for f in figures:
        by_part.setdefault(f["part"], []).append(f)
    assert set(by_part) == {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "peer"}
    p1 = {f["measure"]: f for f in by_part["P1"]}
    assert {f["details"].get("decode") for f in by_part["P1"]} >= {"cpu", "device"}
    on_device = next(f for m, f in p1.items() if m.endswith("decode on the device"))
    assert on_device["value"] > 0 and on_device["details"]["decode_rate"] is None  # no pixel stage to time
    pixel_tasks = next(f for f in by_part["P1"] if f["details"].get("decode") == "cpu")
    assert pixel_tasks["details"]["decode_rate"] > 0 and pixel_tasks["details"]["forward_rate"] > 0
    p7 = {f["measure"]: f for f in by_part["P7"]}
    precision = next(f for m, f in p7.items() if m.startswith("planted set: precision"))
    assert 0 < precision["value"] <= 1 and precision["details"]["ours"]["marked"] > 0
    assert sum(m.startswith("planted ") and "recall" in m for m in p7) >= 5  # copy/reencode/resize/crop/recaption
    scale = [f for m, f in p7.items() if m.startswith("near stage") and m.endswith("(near_edges + keep rule)")]
    assert [f["details"]["radius"] for f in scale] == [4, 2]
    for f in scale:
        assert f["details"]["hashes"] == 20000 and f["details"]["planted_found"] == 200, f["details"]
        assert f["details"]["subset"]["equal"] and f["details"]["subset"]["hashes"] == 5000, f["details"]
    speed = next(f for m, f in p7.items() if m.startswith("dedup-only curate filter run"))
    assert speed["value"] > 0
    if (REPO / ".venv-dj" / "bin" / "python").exists():
        assert speed["baseline"] > 0 and precision["baseline"] is not None, precision["note"]
    build, *memory = by_part["P6"]
    assert build["value"] > 0 and build["baseline"] > 0 and build["goal"] == 0.8
    assert len(build["details"]["bare_before_after"]) == 2  # measured before and after the builds
    assert len(memory) == 3 and all(f["value"] > 0 and f["baseline"] > 0 for f in memory)
    assert memory[2]["details"]["large"]["budget"] == 4000 and memory[2]["details"]["large"]["pool"] == 800
    p3 = by_part["P3"][0]
    assert p3["details"]["urls"] == 400 and p3["details"]["images_curate"] == p3["details"]["images_img2dataset"] > 300
    p1 = by_part["P1"][0]
    assert p1["ratio"] > 0 and 0 < p1["details"]["profile"]["bound"] <= 1 and p1["goal"] == 0.9
    assert len(by_part["P5"]) == 2 and all(f["value"] > 0 and f["baseline"] > 0 for f in by_part["P5"])
    peer = by_part["peer"][0]
    assert peer["details"]["curate"]["kept"] == 300  # pass-through thresholds: every sample did all four filters
    if (REPO / ".venv-dj" / "bin" / "python").exists():
        assert peer["baseline"] > 0 and peer["details"]["data_juicer"]["kept"] == 300, peer["note"]
    else:
        assert "not found" in peer["note"]
