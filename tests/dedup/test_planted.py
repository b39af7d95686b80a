"""The planted-duplicate set (issue 17): its shape on the real sample photos, and that score_decisions rewards a
perfect oracle and punishes a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from curate.dedup.planted import VARIANTS, make_planted_set, score_decisions, true_pairs


@pytest.fixture(scope="module")
def planted(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return make_planted_set(shared_data, tmp_path_factory.mktemp("planted"), seed=0, per_variant=3)


def test_the_set_has_every_original_and_three_of_each_variant(planted):
    keys = [s["key"] for s in planted]
    assert len(keys) == len(set(keys))
    bases = [s for s in planted if s["variant"] in ("original", "negative")]
    assert len(bases) == 101  # 50 + 20 COCO, 12 Flickr, 6 ICDAR, 12 SROIE, 1 WildReceipt
    assert {s["kind"] for s in bases} == {"photo", "receipt"}
    for variant in VARIANTS:
        assert sum(s["variant"] == variant for s in planted) == 3
    assert all(Path(s["path"]).is_file() and s["caption"] for s in planted)
    assert all(s["source"] == s["key"] for s in bases)


def test_each_variant_is_what_it_says(planted):
    by_key = {s["key"]: s for s in planted}
    for s in planted:
        if s["variant"] in ("original", "negative"):
            continue
        original = by_key[s["source"]]
        data, source_data = Path(s["path"]).read_bytes(), Path(original["path"]).read_bytes()
        assert (data == source_data) == (s["variant"] in ("copy", "recaption")), s
        assert (s["caption"] == original["caption"]) == (s["variant"] != "recaption"), s
        with Image.open(s["path"]) as img, Image.open(original["path"]) as src:
            w, h = img.size
            if s["variant"] == "crop":
                assert 0.9 * src.width - 1 <= w <= src.width and 0.9 * src.height - 1 <= h <= src.height
            if s["variant"] == "resize":
                assert 0.5 * src.width - 1 <= w <= 2 * src.width + 1
            if s["variant"] in ("reencode", "flip"):
                assert (w, h) == src.size


def test_the_set_is_deterministic(shared_data, planted, tmp_path):
    again = make_planted_set(shared_data, tmp_path, seed=0, per_variant=3)
    strip = [{k: v for k, v in s.items() if k != "path"} for s in planted]
    assert strip == [{k: v for k, v in s.items() if k != "path"} for s in again]


def test_flips_are_not_true_duplicates(planted):
    pairs = true_pairs(planted)
    sizes: dict[str, int] = {}
    for s in planted:
        if s["variant"] != "flip":
            sizes[s["source"]] = sizes.get(s["source"], 0) + 1
    assert len(pairs) == sum(n * (n - 1) // 2 for n in sizes.values()) >= 3 * 5  # 5 variants that count
    assert not any(any(k.endswith("~flip") for k in pair) for pair in pairs)


def test_a_perfect_oracle_scores_one_and_a_bad_one_less(planted):
    perfect = {s["key"]: s["source"] for s in planted if s["key"] != s["source"] and s["variant"] != "flip"}
    scores = score_decisions(planted, perfect)
    assert scores["overall"]["recall"] == 1.0 and scores["overall"]["precision"] == 1.0
    assert scores["per_variant"]["flip"]["merged"] == 0.0
    assert scores["overall"]["kept"] == scores["overall"]["groups"]

    # the original dropped in favour of its copy is just as good
    swapped = dict(perfect)
    for s in planted:
        if s["variant"] == "copy":
            swapped[s["source"]], swapped[s["key"]] = s["key"], None
            for k, v in perfect.items():
                if v == s["source"] and k != s["key"]:
                    swapped[k] = s["key"]
    assert score_decisions(planted, swapped)["overall"] == scores["overall"]

    # merging everything into one sample finds every duplicate but almost nothing it marks is right
    first = planted[0]["key"]
    everything = score_decisions(planted, {s["key"]: first for s in planted if s["key"] != first})
    assert everything["overall"]["recall"] == 1.0 and everything["overall"]["precision"] < 0.1

    # finding nothing: recall 0; merging the flips is a mistake by default, not when flips count
    assert score_decisions(planted, {})["overall"]["recall"] == 0.0
    with_flips = {**perfect, **{s["key"]: s["source"] for s in planted if s["variant"] == "flip"}}
    assert score_decisions(planted, with_flips)["overall"]["precision"] < 1.0
    assert score_decisions(planted, with_flips)["per_variant"]["flip"]["merged"] == 1.0
    assert score_decisions(planted, with_flips, flip_is_duplicate=True)["overall"]["precision"] == 1.0


def test_score_decisions_rejects_unknown_keys_and_cycles(planted):
    a, b = planted[0]["key"], planted[1]["key"]
    with pytest.raises(ValueError, match="not in the set"):
        score_decisions(planted, {a: "nope"})
    with pytest.raises(ValueError, match="cycle"):
        score_decisions(planted, {a: b, b: a})
