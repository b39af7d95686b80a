"""The embedded demo end to end (what `make filter` runs), then reading every output with standard tools."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest
from helpers import REPO

from curate.commands.build.config import build_from_dict
from curate.commands.filter import run as pipeline
from curate.commands.filter.config import from_dict as filter_from_dict
from curate.commands.filter.config import load as load_filter
from curate.core.config import apply_override, to_dict
from curate.core.errors import ConfigError
from curate.core.schema import LEDGER_COLUMNS
from curate.ledger import summary as stats_module

SCHEMAS = REPO / "schemas"


@pytest.fixture(scope="module")
def demo_run(demo_filter_run):
    return demo_filter_run


def test_stats_conserve_rows_and_ledger_has_one_row_per_input_row(demo_run):
    cfg, stats = demo_run
    assert stats["input_rows"] == 600
    assert stats["input_rows"] == stats["kept_rows"] + sum(stats["rejected"].values())
    ledger = pq.read_table(cfg.out_dir / "ledger")
    assert ledger.num_rows == stats["input_rows"]
    assert len(set(ledger.column("key").to_pylist())) == 600
    saved = json.loads((cfg.out_dir / "stats.json").read_text())
    assert saved["kept_rows"] == stats["kept_rows"]
    for name in ("funnel.png", "config.yaml", "_SUCCESS"):
        assert (cfg.out_dir / name).stat().st_size >= 0


def test_every_filter_rejected_some_demo_rows(demo_run):
    cfg, stats = demo_run
    stages = {reason.split(":")[0] for reason in stats["rejected"]}
    for f in cfg.filters:
        assert f.name in stages, f"{f.name} rejected nothing"
    assert {"download", "image"} <= stages


def test_demo_rows_get_the_reason_they_were_built_for(demo_run, demo_input):
    cfg, _ = demo_run
    kinds = pq.read_table(demo_input / "urls.parquet").column("demo_kind").to_pylist()
    ledger = pq.read_table(cfg.out_dir / "ledger").sort_by("row_id").to_pylist()
    expected = {
        "tiny": "min_side",
        "panorama": "max_aspect_ratio",
        "foreign": "language",
        "emoji": "caption_text:emoji",
        "special_tag": "caption_text:special_tag",
        "too_long": "caption_text:too_long",
        "mismatched": "clip_score",
        "not_found": "download:not_found",
        "corrupt": "image:decode_error",
        "no_caption": "caption_text:missing",
        "no_url": "download:invalid_url",
        "good_en": None,
        "good_zh": None,
        "html_kept": None,
    }
    for kind, row in zip(kinds, ledger, strict=True):
        if kind in expected:
            assert row["reject_reason"] == expected[kind], (kind, row)


def test_shards_read_back_with_webdataset_and_ray(demo_run, ray_local):
    import ray.data
    import webdataset as wds

    cfg, stats = demo_run
    shards = sorted(str(p) for p in (cfg.out_dir / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil"))
    assert len(samples) == stats["kept_rows"]
    assert samples[0]["jpg"].size[0] > 0
    assert [len(list(wds.WebDataset(s, shardshuffle=False))) for s in shards][:-1] == [100] * (len(shards) - 1)
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "shard_sample.schema.json").read_text()))
    for sample in samples:
        validator.validate(sample["json"])
    ds = ray.data.read_webdataset(shards)
    assert ds.count() == stats["kept_rows"]


def test_ledger_reads_with_pyarrow_and_polars_and_validates(demo_run):
    import polars as pl

    cfg, stats = demo_run
    table = pq.read_table(cfg.out_dir / "ledger")
    frame = pl.read_parquet(cfg.out_dir / "ledger" / "*.parquet")
    assert frame.height == table.num_rows == stats["input_rows"]
    assert tuple(frame.columns) == LEDGER_COLUMNS
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "ledger_row.schema.json").read_text()))
    for row in table.to_pylist():
        validator.validate(row)
    assert frame.filter(pl.col("reject_reason").is_null())["clip_score"].min() >= 0.7


def test_rerun_resumes_without_redoing_work(demo_run):
    cfg, stats = demo_run
    before = {p.name: p.read_bytes() for p in (cfg.out_dir / "shards").glob("*.tar")}
    again = pipeline.run_filter(cfg)
    assert again["rows_processed"] == 0
    assert again["rejected"] == stats["rejected"]
    assert {p.name: p.read_bytes() for p in (cfg.out_dir / "shards").glob("*.tar")} == before


def test_rerun_with_other_config_refuses_instead_of_mixing(demo_run):
    cfg, _ = demo_run
    raw = to_dict(cfg)
    apply_override(raw, "filters.clip_score.min_score=0.5")
    with pytest.raises(ConfigError, match=r"different configuration \(changed: filters.4.clip_score.min_score\)"):
        pipeline.run_filter(filter_from_dict(raw))


def test_chunk_lost_mid_run_is_redone(demo_run, ray_local):
    """A killed run leaves some chunks without a ledger part: the rerun processes exactly those."""
    cfg, stats = demo_run
    part = cfg.out_dir / "ledger" / "part-000001.parquet"
    part.unlink()
    (cfg.out_dir / "_SUCCESS").unlink()
    for shard in (cfg.out_dir / "shards").glob("*.tar"):
        shard.unlink()
    again = pipeline.run_filter(cfg)
    assert again["rows_processed"] == 200
    assert again["rejected"] == stats["rejected"] and again["kept_rows"] == stats["kept_rows"]
    assert Path(cfg.out_dir / "_SUCCESS").exists()


def test_skipped_clip_stage_is_reported(demo_input, ray_local, tmp_path):
    overrides = [
        f"input.url_list.path={demo_input / 'urls.parquet'}",
        f"input.url_list.serve_dir={demo_input / 'files'}",
        "input.limit=40",
        "filters.clip_score.skip=true",
        "filters.clip_score.pretrained=/nowhere.pt",
        f"output.dir={tmp_path / 'out'}",
    ]
    cfg = load_filter(REPO / "pipelines" / "filter_demo.yaml", overrides)
    stats = pipeline.run_filter(cfg)
    assert stats["input_rows"] == 40 == stats["kept_rows"] + sum(stats["rejected"].values())
    assert stats["skipped_filters"] == {"clip_score": "skip: true in the config"}
    assert [f for f in stats["funnel"] if f["stage"] == "clip_score"][0]["skipped"] is True
    assert "SKIPPED clip_score" in stats_module.summary_table(stats, cfg.out_dir)
    assert pq.read_table(cfg.out_dir / "ledger").column("clip_score").null_count == 40


def test_curated_pairs_become_caption_samples(demo_run, tmp_path):
    """Stage 2 reads stage 1: every kept pair of the demo run becomes a captioning sample with its image."""
    import webdataset as wds

    from curate.commands.build.run import run_build

    cfg, stats = demo_run
    build_cfg = build_from_dict(
        {
            "name": "demo_captions",
            "sources": [{"curated": {"run": str(cfg.out_dir)}}],
            "output": {"dir": str(tmp_path / "tasks")},
        }
    )
    built = run_build(build_cfg)
    assert built["tasks"]["caption"]["samples"] == stats["kept_rows"]
    samples = list(
        wds.WebDataset(
            sorted(str(p) for p in (tmp_path / "tasks" / "caption" / "shards").glob("*.tar")), shardshuffle=False
        ).decode("pil")
    )
    assert len(samples) == stats["kept_rows"] and all(s["jpg"].size[0] > 0 for s in samples)
    prompts = {s["json"]["prefix"].split("</img>")[1] for s in samples}
    assert prompts == {"Generate the caption in English:", "Generate the caption in Chinese:"}
