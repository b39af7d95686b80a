"""Golden strings from QWENVL_FORMAT.md §2.3 (Box B.1, README/TUTORIAL outputs), reproduced character for
character by the builders, plus property tests of the coordinate and sanitizing rules."""

from hypothesis import given
from hypothesis import strategies as st

from curate.format import qwen
from curate.format.validate import check_sample
from curate.tasks import TASKS, Caption, Skip
from curate.tasks.grounding import GroundedCaption, Phrase, RefGrounding, grounded_text
from curate.tasks.ocr import Ocr
from curate.tasks.text import Text
from curate.tasks.vqa import Vqa

SIZE = (1000, 1000)  # pixel coordinates equal grid coordinates, so the goldens' numbers can be typed in


def only(examples):
    (example,) = [e for e in examples if not isinstance(e, Skip)]
    assert check_sample(example.to_json()) == []
    return example


def test_golden_captioning():
    ex = only(
        Caption()(
            {
                "source": "cc3m",
                "id": 1,
                "image": "cc3m/01581435.jpg",
                "captions": ["the beautiful flowers for design."],
            }
        )
    )
    assert ex.prefix == "<img>cc3m/01581435.jpg</img>Generate the caption in English:"
    assert ex.target == " the beautiful flowers for design.<|endoftext|>"


def test_golden_vqa_and_ocr_vqa():
    ex = only(
        Vqa()(
            {
                "source": "vg",
                "id": 1,
                "image": "VG_100K_2/1.jpg",
                "question": "Does the bandage have a different color than the wrist band?",
                "answers": ["No, both the bandage and the wrist band are white."],
            }
        )
    )
    assert (
        ex.prefix == "<img>VG_100K_2/1.jpg</img>Does the bandage have a different color than the wrist band? Answer:"
    )
    assert ex.target == " No, both the bandage and the wrist band are white.<|endoftext|>"
    ex = only(
        Vqa()(
            {
                "source": "ocrvqa",
                "id": 1,
                "image": "ocr_vqa/1.jpg",
                "question": "What is the title of this book?",
                "answers": [
                    "Asi Se Dice!, Volume 2: Workbook And Audio Activities (Glencoe Spanish) (Spanish Edition)"
                ],
            }
        )
    )
    assert ex.prefix + ex.target == (
        "<img>ocr_vqa/1.jpg</img>What is the title of this book? Answer: Asi Se Dice!, Volume 2: Workbook And Audio "
        "Activities (Glencoe Spanish) (Spanish Edition)<|endoftext|>"
    )


def test_golden_caption_with_grounding_bees():
    text = " Beautiful shot of bees gathering nectars from an apricot flower"
    bees = text.index(" bees")
    flower = text.index(" an apricot flower")
    phrases = [
        Phrase(bees, bees + 5, ((661, 612, 833, 812), (120, 555, 265, 770))),
        Phrase(flower, flower + len(" an apricot flower"), ((224, 13, 399, 313),)),
    ]
    assert grounded_text(text, phrases, SIZE) + qwen.EOS == (
        " Beautiful shot of<ref> bees</ref><box>(661,612),(833,812)</box><box>(120,555),(265,770)</box> gathering "
        "nectars from<ref> an apricot flower</ref><box>(224,13),(399,313)</box><|endoftext|>"
    )


def test_golden_grounding_builder_readme_woman_and_dog():
    """README base-model output: no space after the colon, the word's space inside <ref>."""
    record = {
        "source": "demo",
        "id": 1,
        "image": "demo.jpeg",
        "width": 1000,
        "height": 1000,
        "captions": ["Woman and her dog playing on the beach"],
        "objects": [
            {"category": "person", "bbox": [451, 379, 731, 806]},
            {"category": "dog", "bbox": [219, 424, 576, 896]},
        ],
    }
    ex = only(TASKS["grounding"]()(record))
    assert ex.prefix + ex.target == (
        "<img>demo.jpeg</img>Generate the caption in English with grounding:<ref> Woman</ref><box>(451,379),(731,806)"
        "</box> and<ref> her dog</ref><box>(219,424),(576,896)</box> playing on the beach<|endoftext|>"
    )


def test_golden_referring_grounding_and_grounded_captioning():
    ex = only(
        RefGrounding()(
            {
                "source": "vg",
                "id": 3,
                "image": "VG_100K_2/3.jpg",
                "width": 1000,
                "height": 1000,
                "refs": [{"expression": "the ear on a giraffe", "bbox": [176, 106, 232, 160]}],
            }
        )
    )
    assert ex.prefix == "<img>VG_100K_2/3.jpg</img><ref>the ear on a giraffe</ref>"
    assert ex.target == "<box>(176,106),(232,160)</box><|endoftext|>"
    ex = only(
        GroundedCaption()(
            {
                "source": "vg",
                "id": 4,
                "image": "VG_100K_2/4.jpg",
                "width": 1000,
                "height": 1000,
                "refs": [{"expression": "Yellow cross country ski racing gloves", "bbox": [360, 542, 476, 705]}],
            }
        )
    )
    assert ex.prefix == "<img>VG_100K_2/4.jpg</img><ref>This</ref><box>(360,542),(476,705)</box> is"
    assert ex.target == " Yellow cross country ski racing gloves<|endoftext|>"


def test_golden_ocr():
    ex = only(
        Ocr()(
            {
                "source": "synthdog",
                "id": 1,
                "image": "synthdog/1.jpg",
                "width": 1000,
                "height": 1000,
                "lines": [{"text": "It is managed", "quad": [(568, 121), (625, 131), (624, 182), (567, 172)]}],
            }
        )
    )
    assert ex.prefix == "<img>synthdog/1.jpg</img>OCR with grounding:"
    assert ex.target == "<ref> It is managed</ref><quad>(568,121),(625,131),(624,182),(567,172)</quad><|endoftext|>"


def test_golden_pure_text():
    text = "Pure text keeps no prefix and ends with the end-of-text token, like any other sample here."
    ex = only(Text()({"source": "wiki", "id": 0, "text": text}))
    assert (ex.prefix, ex.target, ex.images) == ("", text + "<|endoftext|>", ())


def test_golden_box_normalization_against_the_original_size():
    # refcocos_shared.json record 0: solution [255,179,330,254] on 640x427 -> normalized_solution [398,419,515,594]
    assert qwen.box([255.0, 179.0, 330.0, 254.0], (640, 427)) == "<box>(398,419),(515,594)</box>"
    assert qwen.box([0, 0, 640, 427], (640, 427)) == "<box>(0,0),(999,999)</box>"  # clamped to 999


@given(
    w=st.integers(1, 8000),
    h=st.integers(1, 8000),
    fx=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    fy=st.lists(st.floats(0, 1), min_size=2, max_size=2),
)
def test_box_round_trips_within_one_grid_cell(w, h, fx, fy):
    x1, x2 = sorted(f * w for f in fx)
    y1, y2 = sorted(f * h for f in fy)
    text = qwen.box([x1, y1, x2, y2], (w, h))
    body = text.removeprefix("<box>").removesuffix("</box>")
    nx1, ny1, nx2, ny2 = (int(v) for v in body.replace("(", "").replace(")", "").split(","))  # §4.3's parser
    for n, v, dim in ((nx1, x1, w), (ny1, y1, h), (nx2, x2, w), (ny2, y2, h)):
        assert abs(qwen.denormalize(n, dim) - v) <= dim / 1000 + 1e-9
    assert (
        check_sample(
            {
                "task": "ref_grounding",
                "source": "t",
                "key": "k",
                "images": ["a.jpg"],
                "prefix": "<img>a.jpg</img><ref>x</ref>",
                "target": text + qwen.EOS,
            }
        )
        == []
    )


SPECIALS = [
    "<img>",
    "</img>",
    "<imgpad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<quad>",
    "</quad>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|extra_0|>",
    "<|extra_204|>",
]


@given(
    st.lists(
        st.one_of(st.text(max_size=8), st.sampled_from(SPECIALS), st.sampled_from(["<", ">", "|", "re", "f>"])),
        max_size=30,
    )
)
def test_injected_special_tokens_never_reach_a_sample(parts):
    text = "".join(parts)
    clean = qwen.sanitize(text)
    assert not qwen.SPECIAL_TOKEN.search(clean)
    for builder, record in [
        (Caption(), {"source": "s", "id": 1, "image": "a.jpg", "captions": [text]}),
        (Vqa(), {"source": "s", "id": 1, "image": "a.jpg", "question": text, "answers": [text]}),
        (
            RefGrounding(),
            {
                "source": "s",
                "id": 1,
                "image": "a.jpg",
                "width": 10,
                "height": 10,
                "refs": [{"expression": text, "bbox": [1, 1, 5, 5]}],
            },
        ),
        (
            Ocr(),
            {
                "source": "s",
                "id": 1,
                "image": "a.jpg",
                "width": 10,
                "height": 10,
                "lines": [{"text": text, "quad": [(1, 1), (5, 1), (5, 5), (1, 5)]}],
            },
        ),
    ]:
        for ex in builder(record):
            if hasattr(ex, "to_json"):
                assert check_sample(ex.to_json()) == [], (builder, text)


def test_unusable_records_are_skipped_with_a_reason_never_raised():
    long_path = "x" * 300 + ".jpg"
    assert list(Caption()({"source": "s", "id": 1, "image": long_path, "captions": ["a cat on a mat"]})) == [
        Skip("image_path_invalid")
    ]
    assert list(Vqa()({"source": "s", "id": 1, "image": "a<b.jpg", "question": "q?", "answers": ["a"]})) == [
        Skip("image_path_invalid")
    ]
    assert list(
        RefGrounding()(
            {
                "source": "s",
                "id": 1,
                "image": "a.jpg",
                "width": 9,
                "height": 9,
                "refs": [{"expression": "x", "bbox": None}, {"expression": " ", "bbox": [1, 1, 2, 2]}],
            }
        )
    ) == [Skip("no_box"), Skip("empty_expression")]
    assert list(
        Ocr()(
            {
                "source": "s",
                "id": 1,
                "image": "a.jpg",
                "width": 9,
                "height": 9,
                "lines": [{"text": "###", "quad": [(0, 0), (1, 0), (1, 1), (0, 1)]}],
            }
        )
    ) == [Skip("unreadable_line"), Skip("no_text_lines")]
