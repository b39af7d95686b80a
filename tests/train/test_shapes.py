"""The synthetic shapes grounding set (issue 6, AC 3): boxes are exact by construction; and, as a slow test, a small
model trained from scratch for <= 10 CPU minutes grounds them far better than a predict-the-mean-box baseline."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from helpers import REPO
from PIL import Image

from curate.commands.build.config import load_build
from curate.commands.build.run import run_build
from curate.commands.train.config import load_train
from curate.commands.train.run import main
from curate.sources.shapes import COLOURS, Shapes
from curate.train.evaluate import boxes, iou, score


def test_every_box_is_the_tight_box_of_its_shape_and_shapes_never_overlap():
    source = Shapes(count=30, size=96, max_objects=3)
    for i in range(30):
        img, refs = source.draw(i)
        pixels = np.asarray(img).astype(int)
        for ref in refs:
            x1, y1, x2, y2 = ref["bbox"]
            ink = (pixels[y1:y2, x1:x2] == np.array(COLOURS[ref["expression"].split()[1]])).all(axis=2)
            ys, xs = np.nonzero(ink)  # the shape's ink touches all four sides of its box
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [0, 0, x2 - x1, y2 - y1], (i, ref)
        record = source.record(i)
        assert record["refs"] == refs and Image.open(io.BytesIO(record["image_bytes"])).size == (96, 96)
        placed = [r["bbox"] for r in refs]
        for a in range(len(placed)):
            for b in range(a + 1, len(placed)):
                assert iou(placed[a], placed[b]) == 0.0
    assert source.record(7) == Shapes(count=30, size=96, max_objects=3).record(7)  # deterministic per (seed, i)


def test_box_parsing_iou_and_the_mean_box_baseline():
    assert boxes("<ref>x</ref><box>(1,2),(30,40)</box><box>(0,0),(9,9)</box>") == [(1, 2, 30, 40), (0, 0, 9, 9)]
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    targets = ["<box>(0,0),(100,100)</box><|endoftext|>", "<box>(200,200),(300,300)</box><|endoftext|>"]
    result = score("ref_grounding", targets, [targets[0], "<box>(0,0),(1,1)</box>"])
    assert result["mean_iou"] == pytest.approx(0.5) and result["iou_at_0.5"] == 0.5
    assert result["exact_match"] == 0.5 and result["parsed_boxes"] == 1.0
    assert result["mean_box_baseline_iou"] == 0.0  # the mean box (100,100)-(200,200) touches neither target
    ocr = score("ocr", ["<ref>a b</ref><quad>(1,1),(2,1),(2,2),(1,2)</quad><|endoftext|>"], ["<ref>a b</ref><quad>"])
    assert ocr["ocr_line_exact_match"] == 1.0 and ocr["exact_match"] == 0.0


@pytest.mark.slow
def test_a_small_model_learns_to_ground_shapes_within_ten_cpu_minutes(tmp_path):
    build = load_build(REPO / "pipelines" / "build_shapes.yaml", [f"output.dir={tmp_path / 'shapes'}"])
    run_build(build)
    cfg = load_train(
        REPO / "pipelines" / "train_shapes.yaml",
        [f"data.train=[{tmp_path / 'shapes' / 'ref_grounding' / 'shards'}]", f"output.dir={tmp_path / 'train'}"],
    )
    summary = main(cfg)
    grounding = json.loads((tmp_path / "train" / "eval_report.json").read_text())["tasks"]["ref_grounding"]
    print(json.dumps({"summary": summary, "ref_grounding": {k: v for k, v in grounding.items() if k != "examples"}}))
    assert grounding["samples"] >= 200
    assert grounding["mean_iou"] >= 2 * grounding["mean_box_baseline_iou"], grounding
    assert grounding["mean_iou"] - grounding["mean_box_baseline_iou"] >= 0.15, grounding
