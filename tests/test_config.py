from pathlib import Path

import pytest

from curate.commands.bench.config import load_bench
from curate.commands.build.config import load_build
from curate.commands.filter.config import from_dict as filter_from_dict
from curate.commands.filter.config import load as load_filter
from curate.commands.mix.config import load_mix
from curate.commands.train.config import load_train
from curate.core.config import apply_override, fingerprint, to_yaml
from curate.core.errors import ConfigError
from curate.filters import FILTERS

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "t", "input": {"url_list": {"path": "x.parquet"}}}


def test_every_pipeline_yaml_loads(monkeypatch):
    """Each pipeline validates; one whose input files do not exist yet (a fresh checkout) may only fail on that."""
    import yaml

    loaders = {
        "filters": load_filter,
        "inputs": load_mix,
        "sources": load_build,
        "stage": load_train,
        "filter_config": load_bench,
    }
    monkeypatch.chdir(REPO)  # pipelines name paths relative to the repository root
    paths = sorted((REPO / "pipelines").glob("*.yaml"))
    assert len(paths) >= 6
    for path in paths:
        keys = set(yaml.safe_load(path.read_text()))
        (loader,) = [load for key, load in loaders.items() if key in keys]
        try:
            loaded = loader(path)
            assert loaded.parts if loader is load_bench else loaded.name
        except ConfigError as err:
            assert "not found" in str(err) or "not a finished filter run" in str(err), (path.name, err)


def test_filter_names_are_unique_snake_case_keys():
    assert len(FILTERS) == len({f.name for f in FILTERS.values()})
    assert all(name == f.name and name.islower() for name, f in FILTERS.items())


def test_unknown_filter_names_the_known_ones():
    known = "known: caption_text, clip_score, decontaminate, dedup_exact"
    with pytest.raises(ConfigError, match=rf"unknown filter 'clip_scroe'.*{known}"):
        filter_from_dict({**MINIMAL, "filters": [{"clip_scroe": {}}]})


def test_unknown_field_names_the_valid_ones():
    valid = "skip, device, concurrency, batch_size, min_pixels"  # the execution fields every filter has, then its own
    with pytest.raises(ConfigError, match=rf"unknown field\(s\) pixels; valid: {valid}"):
        filter_from_dict({**MINIMAL, "filters": [{"min_side": {"pixels": 3}}]})
    with pytest.raises(ConfigError, match=r"unknown field\(s\) outptu; valid: name, input"):
        filter_from_dict({**MINIMAL, "outptu": {}})


def test_wrong_types_and_values_fail_with_what_is_valid():
    with pytest.raises(ConfigError, match="expected a number"):
        filter_from_dict({**MINIMAL, "filters": [{"max_aspect_ratio": {"max_ratio": "wide"}}]})
    with pytest.raises(ConfigError, match="valid: auto, cpu, cuda"):
        filter_from_dict({**MINIMAL, "filters": [{"clip_score": {"device": "tpu"}}]})
    with pytest.raises(ConfigError, match="valid: parquet, csv, jsonl"):
        filter_from_dict({"name": "t", "input": {"url_list": {"path": "x.txt"}}})


def test_input_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one source"):
        filter_from_dict({"name": "t", "input": {}})


def test_set_overrides_reach_filters_and_nested_fields():
    raw = {**MINIMAL, "filters": [{"clip_score": {"min_score": 0.2}}, "language"]}
    apply_override(raw, "filters.clip_score.min_score=0.31")
    apply_override(raw, "filters.language.keep=[en]")
    apply_override(raw, "output.samples_per_shard=7")
    cfg = filter_from_dict(raw)
    assert cfg.filters[0].min_score == 0.31
    assert cfg.filters[1].keep == ("en",)
    assert cfg.output.samples_per_shard == 7
    with pytest.raises(ConfigError, match="no filter 'min_side' in this pipeline; listed: clip_score, language"):
        apply_override(raw, "filters.min_side.min_pixels=3")


def test_fingerprint_ignores_output_dir_and_ray_but_not_thresholds():
    a = filter_from_dict({**MINIMAL, "filters": [{"min_side": {"min_pixels": 10}}]})
    b = filter_from_dict(
        {
            **MINIMAL,
            "filters": [{"min_side": {"min_pixels": 10}}],
            "output": {"dir": "elsewhere"},
            "ray": {"address": "auto"},
        }
    )
    c = filter_from_dict({**MINIMAL, "filters": [{"min_side": {"min_pixels": 11}}]})
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_numbers_in_exponent_form_without_a_dot_are_numbers():
    """YAML 1.1 reads `3e-3` as a string; a float field takes it as the number it plainly is."""
    assert load_train(REPO / "pipelines" / "train_demo.yaml", ["optim.lr=3e-3"]).optim.lr == 0.003
    with pytest.raises(ConfigError, match="expected a number"):
        load_train(REPO / "pipelines" / "train_demo.yaml", ["optim.lr=fast"])


def test_resolved_config_round_trips_through_yaml():
    cfg = load_filter(REPO / "pipelines" / "filter_demo.yaml")
    import yaml

    assert filter_from_dict(yaml.safe_load(to_yaml(cfg))) == cfg
