import pytest
from helpers import make_batch

from curate.filters.text import CaptionText, clean_caption


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p><b>A cup of coffee</b> &amp; more&nbsp;photos</p>", "A cup of coffee & more photos"),
        ("Sunset &amp;quot;beach&amp;quot; IMG_1234.JPG", 'Sunset "beach"'),
        ("Nice dog!!!!!!! see https://example.com/x?y=1 now", "Nice dog! see now"),
        ("red car DSC01234 for sale 123456789", "red car for sale"),
        ("  many    spaces\nand lines ", "many spaces and lines"),
    ],
)
def test_clean_caption(raw, clean):
    assert clean_caption(raw) == clean


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("a dog running on the beach", None),
        ("一只小狗在沙滩上奔跑", None),
        ("© 2019 photo of a red barn in winter", None),  # plain text symbols are not emoji
        ("a dog running on the beach 😍", "caption_text:emoji"),
        ("sunset over the sea ❤️", "caption_text:emoji"),
        ("<PERSON> walks a dog on the beach", "caption_text:special_tag"),
        ("&lt;PERSON&gt; walks a dog", "caption_text:special_tag"),
        ("a <ref>dog</ref> on the beach", "caption_text:special_tag"),
        ("a dog <|endoftext|> on the beach", "caption_text:special_tag"),
        ("IMG_20190412_123456.jpg", "caption_text:irregular"),
        ("#### ---- #### 2019-04-12", "caption_text:irregular"),
        ("dog", "caption_text:too_short"),
        ('<a href="https://x.com">link</a>', "caption_text:too_short"),
        (" ".join(["word"] * 200), "caption_text:too_long"),
        (None, "caption_text:missing"),
        ("   ", "caption_text:missing"),
    ],
)
def test_caption_text_reasons(caption, reason):
    out = CaptionText()(make_batch(caption_raw=[caption]))
    assert out["reject_reason"].tolist() == [reason]


def test_caption_text_writes_cleaned_caption_and_scores():
    out = CaptionText()(make_batch(caption_raw=["<b>A red car</b> parked outside"]))
    row = out.iloc[0]
    assert row["caption"] == "A red car parked outside"
    assert row["caption_words"] == 5 and row["caption_chars"] == len("A red car parked outside")
    assert row["caption_alpha_ratio"] == 1.0


def test_each_han_character_counts_as_a_word():
    out = CaptionText(min_words=3, min_chars=1)(make_batch(caption_raw=["小狗跑", "猫"]))
    assert out["caption_words"].tolist() == [3, 1]
    assert out["reject_reason"].tolist() == [None, "caption_text:too_short"]
