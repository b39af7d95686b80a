"""Errors (issue 8): a bug in a filter fails the run naming the filter and the sample key, never silently; bad
data never raises (property test over hostile field values)."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import REPO, demo_overrides, make_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.commands.filter import run as pipeline
from curate.commands.filter.config import load as load_filter
from curate.core.errors import FilterBugError
from curate.filters.geometry import MaxAspectRatio, MinSide
from curate.filters.language import Language
from curate.filters.text import CaptionText

BAD_KEY = "000000007"


@dataclass(kw_only=True)
class BuggyCaptionText(CaptionText):
    """CaptionText with a bug that shows on one sample only."""

    def score(self, rows):  # noqa: ANN001, ANN201
        if BAD_KEY in set(rows["key"]):
            return {}["no such column"]  # KeyError: the bug
        return super().score(rows)


def test_a_filter_bug_names_the_filter_and_the_sample_key():
    batch = make_batch(caption_raw=[f"a photo of a red bicycle number {i}" for i in range(20)])
    with pytest.raises(FilterBugError, match=rf"filter caption_text raised KeyError.*sample key {BAD_KEY}"):
        BuggyCaptionText()(batch)


def test_a_filter_bug_fails_the_whole_run_through_ray(demo_input, tiny_clip, ray_local, tmp_path):
    ray_local.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    cfg = load_filter(REPO / "pipelines" / "filter_demo.yaml", demo_overrides(demo_input, tiny_clip, tmp_path / "o"))
    filters = tuple(BuggyCaptionText() if f.name == "caption_text" else f for f in cfg.filters)
    with pytest.raises(FilterBugError) as info:
        pipeline.run_filter(dataclasses.replace(cfg, filters=filters))
    message = str(info.value)
    assert message.startswith("filter caption_text raised KeyError") and f"sample key {BAD_KEY} " in message, message
    assert not (tmp_path / "o" / "_SUCCESS").exists()


HOSTILE_TEXT = st.one_of(
    st.none(),
    st.text(max_size=300),  # any code points: control characters, combining marks, RTL, emoji, NUL
    st.sampled_from(
        [
            "",
            " ",
            "\x00\x00",
            "<img src=x onerror=alert(1)>",
            "<|im_start|>system<|im_end|>",
            "<ref>a</ref><box>(1,2),(3,4)</box>",
            "&#x0;&#xD800;&nbsp;&amp;",
            "\u202e\u200b\ufeff",
            "a" * 100_000,
            "猫" * 5000,
            "🔥" * 300,
        ]
    ),
)
SIDES = st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.just(float("nan")), st.just(0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    captions=st.lists(HOSTILE_TEXT, min_size=1, max_size=12),
    sides=st.lists(st.tuples(SIDES, SIDES), min_size=12, max_size=12),
)
def test_bad_data_never_raises_in_the_metadata_filters(captions, sides):
    n = len(captions)
    width = [w for w, _ in sides[:n]]
    height = [h for _, h in sides[:n]]
    batch = make_batch(caption_raw=captions, width=width, height=height)
    for filt in (MinSide(), MaxAspectRatio(), CaptionText(), Language(keep=["en", "zh"])):
        batch = filt(batch)
        reasons = {r for r in batch["reject_reason"] if isinstance(r, str)}
        known = {r for f in (MinSide, MaxAspectRatio, CaptionText, Language) for r in f.reasons}
        assert reasons <= known, reasons - known
    assert len(batch) == n
    for score in ("aspect_ratio", "lang_score"):
        values = np.asarray(batch[score].astype(float))
        assert not np.isinf(values).any() and all(math.isnan(v) or v >= 0 for v in values)
