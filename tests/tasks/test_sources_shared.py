"""Every task from the real annotated data in ../shared/data (builders are pure: no image bytes needed)."""

import json

import pytest

from curate.format.validate import check_sample
from curate.tasks import TASKS, Example


def build(source, task):
    builder = TASKS[task]()
    examples = [e for record in source.records() for e in builder(record) if isinstance(e, Example)]
    assert all(check_sample(e.to_json()) == [] for e in examples)
    return examples


@pytest.fixture(scope="module")
def sources(shared_data):
    from curate.sources import SOURCES

    d = shared_data
    return {
        "coco": SOURCES["coco"](
            captions=str(d / "coco/annotations/captions_train2017.json"),
            instances=str(d / "coco/annotations/instances_train2017.json"),
            images_dir=str(d / "coco/train2017"),
        ),
        "coco_cn": SOURCES["coco_cn"](captions=str(d / "coco/coco-cn_ext_zh_captions_shared.txt")),
        "refcocos": SOURCES["refcocos"](path=str(d / "refs/refcocos_shared.json")),
        "textvqa": SOURCES["textvqa"](path=str(d / "vqa/textvqa_val_v0.1_shared.json")),
        "pope": SOURCES["pope"](path=str(d / "vqa/pope_coco_random_shared.jsonl")),
        "sroie": SOURCES["sroie"](dir=str(d / "ocr/sroie")),
        "icdar2015": SOURCES["icdar2015"](dir=str(d / "ocr/icdar2015")),
        "wildreceipt": SOURCES["wildreceipt"](dir=str(d / "ocr/wildreceipt")),
        "text": SOURCES["text"](paths=(str(d / "text/enwiki_*.txt"), str(d / "text/zhwiki_*.txt"))),
    }


def test_coco_yields_captioning_and_grounded_captions(sources):
    captions = build(sources["coco"], "caption")
    assert len(captions) == 250
    grounding = build(sources["coco"], "grounding")
    assert len(grounding) >= 125  # 150 of 250 captions name an unambiguous, annotated object
    from curate.format import qwen

    records = {r["id"]: r for r in sources["coco"].records()}
    for example in grounding:  # every box drawn is one of the image's COCO instance boxes
        record = records[int(example.key.split("-")[1])]
        known = {qwen.box(o["bbox"], (record["width"], record["height"])) for o in record["objects"]}
        boxes = ["<box>" + b.split("</box>")[0] + "</box>" for b in example.target.split("<box>")[1:]]
        assert boxes and set(boxes) <= known
    assert all(e.prefix.endswith("Generate the caption in English with grounding:") for e in grounding)
    assert all(e.target.startswith(" ") or e.target.startswith("<ref> ") for e in grounding)


def test_coco_cn_yields_chinese_captions_with_the_zh_prompt(sources):
    captions = build(sources["coco_cn"], "caption")
    assert len(captions) == 1027
    assert all(e.prefix.endswith("Generate the caption in Chinese:") for e in captions)


def test_refs_boxes_agree_with_normalized_solution(sources, shared_data):
    refs = [r for r in json.loads((shared_data / "refs/refcocos_shared.json").read_text()) if r["solution"]]
    expected = {}
    for record in sources["refcocos"].records():
        for i, item in enumerate(record["refs"]):
            if item["bbox"] is not None:
                expected[f"refcocos-{record['id']}-{i}"] = item
    ref_grounding = build(sources["refcocos"], "ref_grounding")
    grounded = build(sources["refcocos"], "grounded_caption")
    assert len(ref_grounding) == len(grounded) == len(refs) == 320
    by_solution = {(r["image"], r["normal_caption"]): r["normalized_solution"] for r in refs}
    for example in ref_grounding:
        box = [
            int(v)
            for v in example.target.split("</box>")[0]
            .removeprefix("<box>")
            .replace("(", "")
            .replace(")", "")
            .split(",")
        ]
        image = example.images[0].removeprefix("refcocos/")
        expression = example.prefix.split("<ref>")[1].removesuffix("</ref>")
        solution = by_solution[(image, expression)]
        assert all(abs(a - b) <= 1 for a, b in zip(box, solution, strict=True)), (example.key, box, solution)
    assert all(e.prefix.endswith("</box> is") and e.target.startswith(" ") for e in grounded)


def test_vqa_from_textvqa_and_pope(sources):
    textvqa = build(sources["textvqa"], "vqa")
    assert len(textvqa) == 601
    first = textvqa[0]
    assert first.prefix.endswith("what does hershey's promise, according to this display? Answer:")
    assert first.target == " pure happiness<|endoftext|>"  # the most frequent of 11 human answers
    pope = build(sources["pope"], "vqa")
    assert len(pope) == 1200
    assert {e.target for e in pope} == {" yes<|endoftext|>", " no<|endoftext|>"}


def test_ocr_from_receipts_and_scene_text(sources):
    for name, minimum in (("sroie", 12), ("icdar2015", 4), ("wildreceipt", 1)):
        examples = build(sources[name], "ocr")
        assert len(examples) >= minimum, name
        assert all(e.prefix.endswith("OCR with grounding:") and e.target.startswith("<ref> ") for e in examples)
    (receipt,) = build(sources["wildreceipt"], "ocr")
    # data.txt lists SAFEWAY's box bottom-left first; the quad must come out TL, TR, BR, BL
    assert receipt.target.startswith("<ref> SAFEWAY</ref><quad>(343,86),(585,86),(585,158),(343,158)</quad>")


def test_pure_text_in_english_and_chinese(sources):
    texts = build(sources["text"], "text")
    assert any(e.source == "text" and e.key.startswith("text-enwiki") for e in texts)
    zh = [e for e in texts if e.key.startswith("text-zhwiki")]
    assert zh and all(len(e.target) <= 2000 + len("<|endoftext|>") for e in texts)
    assert sum(1 for c in zh[0].target if "\u4e00" <= c <= "\u9fff") > 100
