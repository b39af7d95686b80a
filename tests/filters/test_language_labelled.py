"""Issue 22: the language filter's defaults against captions labelled by reading them (tests/data/langid). These
are quality figures on the committed set, not timings: the README's "Language ID" table has the same numbers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from curate.filters.language import KANA_OR_HANGUL, Language
from curate.filters.language_eval import LABELS, filter_rule, load_labelled, measure

LABELS_TSV = Path(__file__).parents[1] / "data" / "langid" / "labels.tsv"


@pytest.fixture(scope="module")
def captions(shared_data):
    return load_labelled(LABELS_TSV, shared_data)


@pytest.fixture(scope="module")
def default_rule():
    return filter_rule()


def test_the_labelled_set_is_what_the_issue_asks_for(captions):
    laion = [c for c in captions if c.source.startswith("laion/")]
    assert len(laion) >= 1500
    assert {c.label for c in captions} <= set(LABELS)
    by_source = Counter(c.source.split("/")[0] for c in captions)
    assert by_source["coco"] >= 700  # COCO-CN Chinese and COCO English captions
    split = Counter(c.split for c in captions)
    assert split["test"] >= 0.3 * len(captions) and split["tune"] >= 0.6 * len(captions)
    test = Counter(c.label for c in captions if c.split == "test")
    assert test["zh"] >= 100 and test["other"] + test["none"] >= 25  # both kinds of error can be measured
    assert len({(c.source, c.row) for c in captions}) == len(captions)


def test_defaults_on_the_untouched_test_rows(captions, default_rule):
    figures = measure(default_rule, [c for c in captions if c.split == "test"])
    assert figures.recall >= 0.97, figures
    assert figures.precision >= 0.97, figures


def test_defaults_beat_lid176_alone_on_recall_without_losing_precision(captions, default_rule):
    tune = [c for c in captions if c.split == "tune"]
    chosen = measure(default_rule, tune)
    lid_only = measure(filter_rule(en_vocab_share=None, max_foreign_share=0.0), tune)
    assert chosen.recall - lid_only.recall >= 0.02, (chosen, lid_only)
    assert chosen.precision >= 0.97


def test_kana_and_hangul_are_never_zh_and_short_chinese_is(captions):
    language = Language()
    language.setup()
    for c in captions:
        lang = language.detect(c.text)[0]
        if KANA_OR_HANGUL.search(c.text):
            assert lang != "zh", c
        if c.label == "zh":
            assert lang == "zh", c
