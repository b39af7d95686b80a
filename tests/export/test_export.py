"""`curate export` (issue 21): the Hugging Face export loads with `datasets.load_dataset` and its card renders in
headless Chromium with provenance, filters, funnel, task shares, licences, schema and counts; the LLaVA JSON
passes the rules of LLaVA's data loader (roles alternate, one <image> per image, every image file exists)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import REPO

from curate.__main__ import main
from curate.core.shards import read_output
from curate.export.llava import conversation, loader_problems, plain

SHOTS = REPO / "out" / "test_previews"


def test_qwen_markup_becomes_llava_text():
    target = (
        " A dog<ref> a red circle</ref><box>(125,593),(437,906)</box> and a quad<quad>(1,2),(3,4),(5,6),(7,8)</quad>"
    )
    assert plain(target + "<|endoftext|>") == (
        "A dog a red circle [0.125, 0.593, 0.437, 0.906] and a quad [0.001, 0.002, 0.003, 0.004, 0.005, 0.006,"
        " 0.007, 0.008]"
    )
    rec = {"task": "ref_grounding", "prefix": "<img>a.jpg</img><ref>the red circle</ref>",
           "target": "<box>(125,593),(437,906)</box><|endoftext|>"}  # fmt: skip
    assert conversation(rec) == (
        "Please provide the bounding box coordinate of the region this sentence describes: the red circle",
        "[0.125, 0.593, 0.437, 0.906]",
    )
    reg = {"task": "grounded_caption", "prefix": "<img>a.jpg</img><ref>This</ref><box>(1,2),(3,4)</box> is",
           "target": " the green square<|endoftext|>"}  # fmt: skip
    assert conversation(reg) == (
        "Please provide a short description for this region: [0.001, 0.002, 0.003, 0.004]",
        "This is the green square",
    )


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"id": "a", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]}, "roles"),
        ({"id": "a", "image": "i.jpg",
          "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "<image> tokens"),
        ({"id": "a", "image": "missing.jpg",
          "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}, "missing"),
    ],
)  # fmt: skip
def test_the_loader_rules_catch_each_violation(item, problem, tmp_path):
    assert any(problem in p for p in loader_problems(item, tmp_path))


def test_hf_export_loads_with_datasets_and_its_card_renders(demo_mixture, browser, tmp_path):
    import markdown
    from datasets import load_dataset

    out = tmp_path / "hf"
    assert main(["export", str(demo_mixture / "t"), "--format", "hf", "--out", str(out)]) == 0
    rows = list(read_output(demo_mixture / "t", "parquet"))
    ds = load_dataset(str(out), split="train")
    assert ds.num_rows == len(rows)
    assert Counter(ds["task"]) == Counter(r["task"] for r in rows)
    with_image = next(i for i, r in enumerate(rows) if r["image"] is not None)
    assert ds[with_image]["image"].size == tuple(rows[with_image]["image_sizes"][0])
    card = (out / "README.md").read_text()
    for section in ("## Provenance", "## Filters", "Funnel:", "## Tasks", "## Sources and licences", "## Schema"):
        assert section in card, section
    assert "min_score" in card and "clip_score" in card and "language" in card  # every filter with its thresholds
    assert f"{len(rows):,} samples" in card
    build = json.loads((demo_mixture / "t" / "run.json").read_text())["resolved_config"]
    filter_dir = next(s["curated"]["run"] for s in build["sources"] if "curated" in s)
    stats = json.loads((REPO / filter_dir / "stats.json").read_text())
    assert f"| kept | {stats['kept_rows']:,} |" in card and f"| input rows | {stats['input_rows']:,} |" in card
    html = markdown.markdown(card.split("---\n", 2)[2], extensions=["tables", "fenced_code"])
    page = tmp_path / "card.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><title>card</title><body>{html}</body>")
    browser.get(page.as_uri())
    tables = browser.execute_script("return document.querySelectorAll('table').length")
    assert tables >= 5, tables
    assert "Funnel" in browser.find_element("tag name", "body").text
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / "export_card.png"))


def test_llava_export_passes_the_loader_rules(demo_mixture, tmp_path):
    out = tmp_path / "llava"
    assert main(["export", str(demo_mixture / "t"), "--format", "llava", "--out", str(out)]) == 0
    items = json.loads((out / "llava.json").read_text())
    rows = list(read_output(demo_mixture / "t", "parquet"))
    assert [i["id"] for i in items] == [r["key"] for r in rows]
    problems = {i["id"]: loader_problems(i, out) for i in items}
    assert not any(problems.values()), [p for p in problems.items() if p[1]][:5]
    assert sum("image" in i for i in items) == sum(r["image"] is not None for r in rows)
    boxes = [i for i in items if i["id"].startswith("demo_scenes") and "[0." in i["conversations"][1]["value"]]
    assert boxes  # grounding answers carry normalized boxes


def test_llava_boxes_are_normalized_over_the_padded_square():
    # a 200 x 100 image padded to 200 x 200: y moves down by 50 px and both axes divide by 200
    assert plain("<box>(0,0),(1000,1000)</box>", (200, 100)) == "[0.000, 0.250, 1.000, 0.750]"
    assert plain("<box>(0,0),(1000,1000)</box>", (100, 200)) == "[0.250, 0.000, 0.750, 1.000]"


def test_export_refuses_an_out_folder_holding_the_source(tmp_path, capsys):
    (tmp_path / "build" / "caption" / "parquet").mkdir(parents=True)
    assert main(["export", str(tmp_path / "build"), "--format", "hf", "--out", str(tmp_path), "--overwrite"]) == 2
    assert "must lie outside" in capsys.readouterr().err
    assert (tmp_path / "build" / "caption" / "parquet").exists()


def test_export_refuses_a_mixture_with_what_it_takes(tmp_path, capsys):
    (tmp_path / "mix" / "parquet").mkdir(parents=True)
    (tmp_path / "mix" / "run.json").write_text('{"command": "mix"}')
    assert main(["export", str(tmp_path / "mix"), "--format", "llava", "--out", str(tmp_path / "x")]) == 2
    assert "output of `curate mix`" in capsys.readouterr().err


def test_qwen_markup_becomes_qwen2vl_and_deepseek_vl2_markup():
    from curate.export.chat import deepseek_record, deepseek_text, qwen2vl_record, qwen2vl_text

    target = " A dog<ref> a red circle</ref><box>(125,593),(437,1000)</box><box>(0,0),(10,10)</box>.<|endoftext|>"
    assert qwen2vl_text(target) == (
        " A dog<|object_ref_start|> a red circle<|object_ref_end|><|box_start|>(125,593),(437,1000)<|box_end|>"
        "<|box_start|>(0,0),(10,10)<|box_end|>."
    )
    # one <|det|> list per run of boxes, on DeepSeek-VL2's 0-999 grid; a quad becomes the box around it
    assert (
        deepseek_text(target)
        == " A dog<|ref|> a red circle<|/ref|><|det|>[[125, 592, 437, 999], [0, 0, 10, 10]]<|/det|>."
    )
    assert deepseek_text("<ref>x</ref><quad>(10,20),(30,5),(40,50),(0,60)</quad>") == (
        "<|ref|>x<|/ref|><|det|>[[0, 5, 40, 60]]<|/det|>"
    )
    rec = {"key": "k", "task": "ref_grounding", "prefix": "<img>a.jpg</img><ref>the giraffe</ref>",
           "target": "<box>(580,270),(1000,900)</box><|endoftext|>"}  # fmt: skip
    assert deepseek_record(rec, ["images/a.jpg"])["conversation"] == [  # the README's visual grounding example
        {"role": "<|User|>", "content": "<image>\n<|ref|>the giraffe<|/ref|>.", "images": ["images/a.jpg"]},
        {"role": "<|Assistant|>", "content": "<|ref|>the giraffe<|/ref|><|det|>[[579, 270, 999, 899]]<|/det|>"},
    ]
    ocr = {"key": "k", "task": "ocr", "prefix": "<img>a.jpg</img>OCR with grounding:", "target": target}
    assert deepseek_record(ocr, ["a.jpg"])["conversation"][0]["content"] == "<image>\n<|grounding|>OCR with grounding:"
    assert qwen2vl_record(ocr, ["a.jpg"])["messages"][0]["content"] == [
        {"type": "image", "image": "a.jpg"},
        {"type": "text", "text": "OCR with grounding:"},
    ]


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"conversation": [{"role": "<|Assistant|>", "content": "x"}, {"role": "<|User|>", "content": "y"}]}, "roles"),
        ({"conversation": [{"role": "<|User|>", "content": "q", "images": ["i.jpg"]},
                           {"role": "<|Assistant|>", "content": "a"}]}, "<image> tokens"),
        ({"conversation": [{"role": "<|User|>", "content": "<image>\nq", "images": ["missing.jpg"]},
                           {"role": "<|Assistant|>", "content": "a"}]}, "missing"),
        ({"conversation": [{"role": "<|User|>", "content": "q"},
                           {"role": "<|Assistant|>", "content": "<|det|>[[1, 2, 3, 1000]]<|/det|>"}]}, "over 999"),
        ({"conversation": [{"role": "<|User|>", "content": "q"},
                           {"role": "<|Assistant|>", "content": "<|det|>[1, 2, 3, 4]<|/det|>"}]}, "list of boxes"),
        ({"messages": [{"role": "assistant", "content": []}, {"role": "user", "content": []}]}, "roles"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "image": "missing.jpg"}]},
                       {"role": "assistant", "content": []}]}, "missing"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "<ref>x</ref>"}]},
                       {"role": "assistant", "content": [{"type": "text", "text": "<|box_start|>(1,2),(3,4)"}]}]},
         "unbalanced"),
    ],
)  # fmt: skip
def test_the_chat_format_rules_catch_each_violation(item, problem, tmp_path):
    from curate.export.chat import deepseek_problems, qwen2vl_problems

    check = deepseek_problems if "conversation" in item else qwen2vl_problems
    assert any(problem in p for p in check(item, tmp_path)), check(item, tmp_path)


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["qwen2vl", "deepseek_vl2"])
def test_chat_exports_pass_their_loader_rules(demo_mixture, tmp_path, fmt):
    from curate.export.chat import deepseek_problems, qwen2vl_problems

    out = tmp_path / fmt
    assert main(["export", str(demo_mixture / "t"), "--format", fmt, "--out", str(out)]) == 0
    items = json.loads((out / f"{fmt}.json").read_text())
    rows = list(read_output(demo_mixture / "t", "parquet"))
    assert [i["id"] for i in items] == [r["key"] for r in rows]
    check = qwen2vl_problems if fmt == "qwen2vl" else deepseek_problems
    problems = {i["id"]: check(i, out) for i in items}
    assert not any(problems.values()), [p for p in problems.items() if p[1]][:5]
    text = json.dumps(items)
    marker = "<|box_start|>" if fmt == "qwen2vl" else "<|det|>"
    assert text.count(marker) >= sum(r["target"].count("<box>") > 0 for r in rows)  # every grounded answer
