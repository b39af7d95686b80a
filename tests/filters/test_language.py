import pyarrow.parquet as pq
import pytest
from helpers import make_batch

from curate.filters.language import Language
from curate.filters.text import CaptionText


@pytest.fixture(scope="module")
def language() -> Language:
    lang = Language()
    lang.setup()
    return lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("a brown dog running on the beach at sunset", "en"),
        ("一只小狗在海滩上奔跑", "zh"),
        ("墙上一排排整齐的砖块", "zh"),  # lid.176 alone says zh at 0.26
        ("一面旧砖墙的黑白特写", "zh"),  # lid.176 alone says ro
        ("発射台の上で打ち上げを待っているロケット", "ja"),  # kana: Japanese, not Chinese
        ("une tasse de café avec un joli dessin dans la mousse de lait", "fr"),
        ("하얀 접시 위에 놓인 라떼 아트 커피 한 잔", "ko"),
    ],
)
def test_detect(language, text, lang):
    assert language.detect(text)[0] == lang


def test_verdict_keeps_en_zh_and_rejects_the_rest(language):
    captions = [
        "a red car parked on the street",
        "一辆红色的汽车停在街上",
        "ein rotes Auto parkt auf der Straße",
        "a red car parked near Красная площадь",
    ]  # Cyrillic letters: not English/Chinese characters
    out = language(make_batch(caption=captions))
    assert out["reject_reason"].tolist() == [None, None, "language", "language"]
    assert out["lang"].tolist()[:3] == ["en", "zh", "de"]


def test_real_chinese_captions_are_zh(shared_data, language):
    """COCO-CN: 1027 human-written Chinese captions (the case lid.176 calls `ja`)."""
    lines = (shared_data / "coco" / "coco-cn_ext_zh_captions_shared.txt").read_text().splitlines()
    captions = [line.split("\t", 1)[1] for line in lines if "\t" in line]
    labels = [language.detect(c)[0] for c in captions]
    assert len(captions) > 1000
    assert labels.count("zh") / len(labels) >= 0.99


def test_real_wikipedia_text(shared_data, language):
    for name, lang in [("enwiki", "en"), ("zhwiki", "zh"), ("jawiki", "ja"), ("kowiki", "ko")]:
        (path,) = (shared_data / "text").glob(f"{name}_*.txt")
        docs = [d for d in path.read_text().splitlines() if d.strip()][:10]
        labels = [language.detect(d[:300])[0] for d in docs]
        assert labels.count(lang) >= 9, (name, labels)


def test_laion_rows_get_text_and_language_verdicts(shared_data, language):
    """Every LAION row ends with a caption_text reason, a language reason, or kept with a language label."""
    tables = [pq.read_table(p, columns=["TEXT"]) for p in sorted((shared_data / "laion").glob("*.parquet"))]
    captions = [t for table in tables for t in table.column("TEXT").to_pylist()]
    batch = make_batch(caption_raw=captions)
    out = language(CaptionText()(batch))
    assert len(out) == 7000
    reasons = out["reject_reason"]
    text_rejected = reasons.fillna("").str.startswith("caption_text:")
    assert out.loc[~text_rejected, "lang"].notna().all()  # every row past the text rules has a language label
    assert (reasons == "language").sum() > 50  # the LAION rows hold foreign-language captions
    assert text_rejected.sum() > 50
    assert reasons.isna().sum() > 4000  # mostly English alt-text survives
    kept = out.loc[reasons.isna()]
    # kept by lid.176 (en/zh), or by the English vocabulary where lid.176 read a short title as another language
    assert (kept["lang"].isin(["en", "zh"]) | (kept["lang_en_share"] >= 0.6)).all()
    assert (~kept["lang"].isin(["en", "zh"])).sum() > 20


def test_vocabulary_keeps_english_titles_that_lid176_misreads(language):
    titles = [
        "Budweiser Personal Checks",
        "Mini Crop Top",
        "Bananas Foster Parfaits",
        "Hardcover Journal",
        "PASSWORD GENERATOR ICON",
    ]
    out = language(make_batch(caption=titles))
    assert out["reject_reason"].tolist() == [None] * len(titles)
    assert (out["lang_en_share"] >= 0.6).all()
    foreign = ["Bianco Donna Pelle Sneakers", "Nøytrale løpesko til dame", "Chaussures de sport pour femme"]
    assert language(make_batch(caption=foreign))["reject_reason"].tolist() == ["language"] * 3


def test_one_japanese_word_in_an_english_title_is_tolerated_a_russian_caption_is_not(language):
    out = language(
        make_batch(caption=["Golden Gate Bridge in San Francisco during sunset — ストック写真", "Кроссовки Nike"])
    )
    assert out["reject_reason"].tolist() == [None, "language"]
    assert out["lang"].iloc[0] != "zh"  # kana: never the Han rule's Chinese


def test_thresholds_reapply_from_saved_scores_and_old_ledgers_without_the_share(language):
    scored = language(make_batch(caption=["Viking hat", "a dog on a beach", "ein Hund am Strand"]))
    strict = Language(en_vocab_share=None)
    assert strict.verdict(scored).tolist() == ["language", None, "language"]  # no model loaded: saved scores
    old = scored.drop(columns=["lang_en_share"])  # a ledger written before issue 22
    assert Language().verdict(old).tolist() == ["language", None, "language"]


def test_bad_config_fails_fast():
    from curate.core.errors import ConfigError

    for bad in ({"en_vocab_share": 1.5}, {"max_foreign_share": -0.1}, {"min_score": 2}):
        with pytest.raises(ConfigError, match="within"):
            Language(**bad)
