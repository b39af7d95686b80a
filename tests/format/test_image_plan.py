"""Image plans (issue 18): DeepSeek-VL2's grid and token count equal a transcription of the published rule
(written here, independent of curate.format.image_plan), and the views equal crops of the padded canvas."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from curate.__main__ import main
from curate.format.image_plan import image_tokens, plan_image, views


def published_select_best_resolution(image_size, candidate_resolutions):  # noqa: ANN001, ANN201
    """processing_deepseek_vl_v2.py's select_best_resolution, transcribed."""
    original_width, original_height = image_size
    best_fit = None
    max_effective_resolution = 0
    min_wasted_resolution = float("inf")
    for width, height in candidate_resolutions:
        scale = min(width / original_width, height / original_height)
        downscaled_width, downscaled_height = int(original_width * scale), int(original_height * scale)
        effective_resolution = min(downscaled_width * downscaled_height, original_width * original_height)
        wasted_resolution = (width * height) - effective_resolution
        if effective_resolution > max_effective_resolution or (
            effective_resolution == max_effective_resolution and wasted_resolution < min_wasted_resolution
        ):
            max_effective_resolution = effective_resolution
            min_wasted_resolution = wasted_resolution
            best_fit = (width, height)
    return best_fit


CANDIDATES = [(384 * m, 384 * n) for m in range(1, 10) for n in range(1, 10) if m * n <= 9]


def published(width: int, height: int, images: int = 1) -> tuple[tuple[int, int], int]:
    """(grid [columns, rows], tokens) by the published rule: 14 x 14 per view after the 2 x 2 unfold of the padded
    28 x 28 SigLIP grid; global view 14 rows of (14 + 1), 1 separator, local (rows*14) rows of (columns*14 + 1)."""
    best_width, best_height = (
        (384, 384) if images > 2 else published_select_best_resolution((width, height), CANDIDATES)
    )
    num_width_tiles, num_height_tiles = best_width // 384, best_height // 384
    h = w = 14
    tokens = h * (w + 1) + 1 + (num_height_tiles * h) * (num_width_tiles * w + 1)
    return (num_width_tiles, num_height_tiles), tokens


def _sizes() -> list[tuple[int, int]]:
    rng = np.random.default_rng(18)
    grid = [(int(w), int(h)) for w, h in rng.integers(1, 5000, size=(500, 2))]
    return grid + [(300, 200), (640, 480), (1920, 1080), (4000, 3000), (385, 384), (384, 385), (1, 1), (10, 4000),
                   (4000, 10), (384, 384), (768, 384), (1152, 1152), (3456, 384)]  # fmt: skip


@pytest.mark.parametrize("images", [1, 2, 3])
def test_grid_and_tokens_equal_the_published_rule(images):
    for width, height in _sizes():
        plan = plan_image("deepseek_vl2", width, height, images)
        assert (plan.grid, plan.tokens) == published(width, height, images), (width, height)
        assert len(plan.tiles) == plan.grid[0] * plan.grid[1] <= 9


def test_the_examples_of_the_issue():
    examples = {(300, 200): ((1, 1), 421), (640, 480): ((2, 2), 1023), (1920, 1080): ((4, 2), 1807),
                (4000, 3000): ((3, 3), 2017)}  # fmt: skip
    for (width, height), (grid, tokens) in examples.items():
        plan = plan_image("deepseek_vl2", width, height)
        assert (plan.grid, plan.tokens) == (grid, tokens)
    assert image_tokens("qwen_vl", 4000, 3000) == 256
    with pytest.raises(ValueError, match="valid: qwen_vl, deepseek_vl2"):
        plan_image("anyres", 10, 10)


@pytest.mark.parametrize("size", [(640, 480), (300, 900), (1920, 1080), (97, 31)])
def test_tiles_are_crops_of_the_padded_canvas_and_the_thumbnail_the_padded_resize(size):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
    plan = plan_image("deepseek_vl2", *size)
    thumbnail, tiles = views(image, plan)
    assert np.array_equal(np.asarray(thumbnail), np.asarray(ImageOps.pad(image, (384, 384), color=(127, 127, 127))))
    canvas = ImageOps.pad(image, plan.canvas, color=(127, 127, 127))
    assert len(tiles) == len(plan.tiles)
    for (x, y, *_), tile in zip(plan.tiles, tiles, strict=True):
        assert tile.size == (384, 384)
        assert np.array_equal(np.asarray(tile), np.asarray(canvas)[y : y + 384, x : x + 384])
    rows = [plan.tiles[i][1] for i in range(len(plan.tiles))]
    assert rows == sorted(rows)  # row-major


def test_curate_tiles_prints_one_json_line_per_size(capsys):
    assert main(["tiles", "--plan", "deepseek_vl2", "640x480", "10x4000"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["grid"], d["tokens"]) for d in lines] == [([2, 2], 1023), ([1, 9], published(10, 4000)[1])]
    assert lines[0]["tiles"][1] == [384, 0, 768, 384]
    assert main(["tiles", "--plan", "qwen_vl", "640x480"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 256
    assert main(["tiles", "640by480"]) == 2


def test_tiles_map_back_onto_the_image_and_inspect_draws_them(tmp_path):
    from curate.format.image_plan import tiles_in_image
    from curate.inspect.sheet import PLAN_COLOUR, render_image
    from curate.inspect.views import View

    plan = plan_image("deepseek_vl2", 640, 480)  # canvas 768 x 768: scale 1.2, 96 px of padding above and below
    assert tiles_in_image(plan) == [(0, 0, 320, 240), (320, 0, 640, 240), (0, 240, 320, 480), (320, 240, 640, 480)]
    image = Image.new("RGB", (640, 480), (0, 0, 0))
    buffer = tmp_path / "black.png"
    image.save(buffer)
    plain, _ = render_image(View("k", "task", "caption", "", buffer.read_bytes()))
    drawn, _ = render_image(View("k", "task", "caption", "", buffer.read_bytes()), plan="deepseek_vl2")
    column = np.asarray(drawn)[:, np.asarray(drawn).shape[1] // 2]  # the vertical grid line at the image's middle
    assert (column == PLAN_COLOUR).all(axis=1).sum() > 100 and not (np.asarray(plain) == PLAN_COLOUR).all(axis=2).any()


def test_per_image_slot_counts_follow_the_plan_and_the_recorded_sizes():
    from curate.format.image_plan import sample_image_tokens
    from curate.format.tokenizer import ByteTokenizer

    assert sample_image_tokens("qwen_vl", None, 2) == [256, 256]
    assert sample_image_tokens("deepseek_vl2", [[640, 480]], 1) == [1023]
    assert sample_image_tokens("deepseek_vl2", [[640, 480], [1920, 1080], [10, 10]], 3) == [421, 421, 421]  # > 2
    assert sample_image_tokens("deepseek_vl2", [], 1) is None and sample_image_tokens("deepseek_vl2", [], 0) == []
    tok = ByteTokenizer()
    prefix, target = "<img>a.jpg</img>x<img>b.jpg</img>", "y<img>c.jpg</img><|endoftext|>"
    enc = tok.encode_sample(prefix, target, [5, 7, 9])
    pad = tok.ids["<imgpad>"]
    spans = [enc.input_ids[s:].index(tok.ids["</img>"]) for s in enc.slots]
    assert spans == [5, 7, 9] and enc.input_ids.count(pad) == 21
    assert tok.count_sample(prefix, target, [5, 7, 9]) == len(enc.input_ids)
    assert tok.count_sample(prefix, target, 4) == len(enc.input_ids) - 21 + 12
    with pytest.raises(ValueError, match="no slot count"):
        tok.encode(prefix, [5])
