"""Image plans (issue 18): DeepSeek-VL2's grid and token count equal a transcription of the published rule
(written here, independent of curate.format.image_plan), and the views equal crops of the padded canvas;
LLaVA-OneVision's anyres_max_9 count equals a transcription of transformers' LlavaOnevisionProcessor."""

from __future__ import annotations

import json
import math
from pathlib import Path

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


# LLaVA-OneVision, transcribed from transformers (image_processing_utils.select_best_resolution,
# LlavaOnevisionImageProcessor's default image_grid_pinpoints, LlavaOnevisionProcessor._get_number_of_features and
# _get_unpadded_features, llava_next's get_patch_output_size and _pad_for_patching)
ONEVISION_PINPOINTS = [[384 * h, 384 * w] for h in range(1, 7) for w in range(1, 7)]  # [height, width]


def hf_select_best_resolution(original_size, possible_resolutions):  # noqa: ANN001, ANN201
    """transformers' select_best_resolution: the function transcribed above, over [height, width] pairs."""
    original_height, original_width = original_size
    swapped = [(width, height) for height, width in possible_resolutions]
    best_width, best_height = published_select_best_resolution((original_width, original_height), swapped)
    return best_height, best_width


def onevision(orig_width: int, orig_height: int) -> tuple[tuple[int, int], int]:
    """(grid [columns, rows], tokens) as LlavaOnevisionProcessor counts them (crop 384, 729 tokens a view)."""
    height = width = 384
    num_image_tokens = 729
    height_best_resolution, width_best_resolution = hf_select_best_resolution(
        [orig_height, orig_width], ONEVISION_PINPOINTS
    )
    scale_height, scale_width = height_best_resolution // height, width_best_resolution // width
    patches_height = patches_width = int(math.sqrt(num_image_tokens))
    current_height = patches_height * scale_height
    current_width = patches_width * scale_width
    original_aspect_ratio = orig_width / orig_height
    current_aspect_ratio = current_width / current_height
    if original_aspect_ratio > current_aspect_ratio:
        new_height = int(orig_height * (current_width / orig_width))
        padding = (current_height - new_height) // 2
        current_height -= padding * 2
    else:
        new_width = int(orig_width * (current_height / orig_height))
        padding = (current_width - new_width) // 2
        current_width -= padding * 2
    unpadded_features = current_height * current_width
    newline_features = current_height
    ratio = math.sqrt(current_height * current_width / (9 * patches_height**2))
    if ratio > 1.1:
        unpadded_features = int(current_height // ratio) * int(current_width // ratio)
        newline_features = int(current_height // ratio)
    return (scale_width, scale_height), unpadded_features + newline_features + num_image_tokens


@pytest.mark.parametrize("images", [1, 3])
def test_anyres_max_9_equals_the_onevision_processor(images):
    for width, height in _sizes():
        plan = plan_image("anyres_max_9", width, height, images)
        assert (plan.grid, plan.tokens) == onevision(width, height), (width, height)
        assert plan.canvas == (plan.grid[0] * 384, plan.grid[1] * 384) and len(plan.tiles) <= 36
    # by hand: 384 x 384 is one tile, 729 + 27 x 27 + 27 newlines; 300 x 200 keeps 19 of the tile's 27 rows
    # (int(200 * 27 / 300) = 18, padding (27 - 18) // 2 = 4 rows each side); 1920 x 1080 on 5 x 3 tiles keeps
    # 75 x 135 and is shrunk by sqrt(75 * 135 / 6561) to 60 x 108
    assert image_tokens("anyres_max_9", 384, 384) == 729 + 729 + 27
    assert image_tokens("anyres_max_9", 300, 200) == 729 + 19 * 27 + 19
    assert plan_image("anyres_max_9", 1920, 1080).grid == (5, 3)
    assert image_tokens("anyres_max_9", 1920, 1080) == 729 + 60 * 108 + 60


def hf_patch_geometry(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(new width, new height, paste x, paste y) of get_patch_output_size and _pad_for_patching."""
    original_width, original_height = size
    target_width, target_height = target
    scale_w = target_width / original_width
    scale_h = target_height / original_height
    if scale_w < scale_h:
        new_width = target_width
        new_height = min(math.ceil(original_height * scale_w), target_height)
    else:
        new_height = target_height
        new_width = min(math.ceil(original_width * scale_h), target_width)
    paste_x, _ = divmod(target_width - new_width, 2)
    paste_y, _ = divmod(target_height - new_height, 2)
    return new_width, new_height, paste_x, paste_y


def test_anyres_tiles_map_back_through_the_onevision_resize_and_padding():
    from curate.format.image_plan import anyres_pad_geometry, tiles_in_image

    for width, height in _sizes():
        plan = plan_image("anyres_max_9", width, height)
        sx, sy, ox, oy = anyres_pad_geometry((width, height), plan.canvas)
        assert (round(sx * width), round(sy * height), ox, oy) == hf_patch_geometry((width, height), plan.canvas)
    plan = plan_image("anyres_max_9", 640, 480)  # 768 x 768: resized to 768 x 576, 96 rows of padding each side
    assert tiles_in_image(plan) == [(0, 0, 320, 240), (320, 0, 640, 240), (0, 240, 320, 480), (320, 240, 640, 480)]


def test_anyres_max_9_counts_for_mix_and_tiles_but_does_not_train(capsys):
    from curate.commands.train.config import load_train
    from curate.core.errors import ConfigError
    from curate.format.image_plan import sample_image_tokens

    assert main(["tiles", "--plan", "anyres_max_9", "640x480"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == onevision(640, 480)[1]
    assert sample_image_tokens("anyres_max_9", [[640, 480], [300, 200], [10, 10]], 3) == [
        onevision(w, h)[1] for w, h in ((640, 480), (300, 200), (10, 10))
    ]
    train_demo = Path(__file__).resolve().parents[2] / "pipelines" / "train_demo.yaml"
    with pytest.raises(
        ConfigError, match=r"counts tokens for curate mix and curate tiles only\); valid: qwen_vl, deepseek_vl2"
    ):
        load_train(train_demo, ["image_plan=anyres_max_9"])
