"""Synthetic OCR documents (the `synthdog` source): quads enclose their line's ink, Chinese renders without missing
glyphs, output is deterministic, samples validate, and the contact sheet command works."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO
from PIL import Image, ImageFont

from curate.ocr.fonts import coverage
from curate.ocr.geometry import apply, inside

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.fixture(scope="module")
def ocr_config(shared_data, tmp_path_factory):
    text = (REPO / "pipelines" / "build_synthdog.yaml").read_text().replace("../shared/data", str(shared_data))
    path = tmp_path_factory.mktemp("cfg") / "ocr.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def renderer(ocr_config):  # noqa: F811 - the fixture wraps the source's renderer
    from curate.commands.build.config import load_build
    from curate.sources.synthdog import renderer

    return renderer(load_build(ocr_config).sources[0])


@pytest.fixture(scope="module")
def documents(renderer):
    return [renderer.render(0, i, keep_masks=True) for i in range(200)]


def _ink_points(line) -> np.ndarray:
    ys, xs = np.nonzero(line.mask > 64)
    return np.stack([xs + line.box[0] + 0.5, ys + line.box[1] + 0.5], axis=1)


def test_every_quad_holds_its_line_and_not_its_neighbours(documents):
    """≥ 95% of each line's ink inside its quad; other lines' ink ≤ 10% of a quad's area (issue 4, AC 1)."""
    assert {d.language for d in documents} == {"en", "zh"}
    worst_inside, worst_foreign, lines = 1.0, 0.0, 0
    for doc in documents:
        ink = [apply(doc.paper_to_canvas, _ink_points(line)) for line in doc.lines]
        for i, line in enumerate(doc.lines):
            quad = np.array(line.quad)
            if len(ink[i]):
                worst_inside = min(worst_inside, inside(quad, ink[i]).mean())
            box_area = (line.box[2] - line.box[0]) * (line.box[3] - line.box[1])  # quad area in paper pixels
            foreign = sum(int(inside(quad, pts).sum()) for j, pts in enumerate(ink) if j != i and len(pts))
            worst_foreign = max(worst_foreign, foreign / box_area)
            lines += 1
    assert lines > 2000
    assert worst_inside >= 0.95, worst_inside
    assert worst_foreign <= 0.10, worst_foreign


def test_quads_stay_inside_the_image(documents):
    for doc in documents:
        for line in doc.lines:
            xs, ys = zip(*line.quad, strict=True)
            assert min(xs) >= 0 and min(ys) >= 0 and max(xs) <= doc.width and max(ys) <= doc.height


def test_chinese_text_has_no_missing_glyphs(documents):
    """Every character drawn is in the font's cmap and renders differently from the missing-glyph box."""
    zh = [d for d in documents if d.language == "zh"]
    assert len(zh) >= 50
    for doc in zh:
        cmap = coverage(doc.font_path)
        chars = {c for line in doc.lines for c in line.text if c != " "}
        assert all(ord(c) in cmap for c in chars), doc.font
    doc = zh[0]
    font = ImageFont.truetype(doc.font_path, 32)
    notdef = np.asarray(font.getmask("\U0010fffd"))  # a private-use code point: drawn as .notdef
    for char in sorted({c for line in doc.lines for c in line.text if c != " "})[:300]:
        mask = np.asarray(font.getmask(char))
        assert mask.shape != notdef.shape or not np.array_equal(mask, notdef), char


def test_text_scale_and_max_lines_make_finer_shorter_documents(ocr_config):
    import dataclasses

    from curate.commands.build.config import load_build
    from curate.core.errors import ConfigError
    from curate.sources.synthdog import renderer

    source = load_build(ocr_config).sources[0]
    fine = renderer(dataclasses.replace(source, short_side=(768, 1024), text_scale=(0.016, 0.02), max_lines=6))
    plain = renderer(dataclasses.replace(source, short_side=(768, 1024)))

    def body_height(doc) -> float:  # the median ink-box height of a document's lines, in paper pixels
        return float(np.median([line.box[3] - line.box[1] for line in doc.lines]))

    fine_docs, plain_docs = [fine.render(0, i) for i in range(20)], [plain.render(0, i) for i in range(20)]
    assert all(1 <= len(d.lines) <= 6 for d in fine_docs)
    assert max(len(d.lines) for d in plain_docs) > 6
    assert np.median([body_height(d) for d in fine_docs]) < 0.6 * np.median([body_height(d) for d in plain_docs])
    for bad in ({"text_scale": (0.05, 0.01)}, {"text_scale": (0.0, 0.1)}, {"max_lines": -1}):
        with pytest.raises(ConfigError, match="synthdog: "):
            dataclasses.replace(source, **bad)


def test_same_seed_gives_byte_identical_documents(renderer):
    a, b = renderer.render(7, 3), renderer.render(7, 3)
    assert a.image == b.image and [(line.text, line.quad) for line in a.lines] == [
        (line.text, line.quad) for line in b.lines
    ]
    assert renderer.render(8, 3).image != a.image


def test_building_the_source_writes_valid_samples_and_a_contact_sheet(ocr_config, tmp_path, capsys):
    from curate.__main__ import main

    sets = ["sources.synthdog.count=16", "sources.synthdog.documents_per_chunk=5"]
    args = ["build", str(ocr_config), *[a for s in sets for a in ("--set", s)]]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "ocr" in capsys.readouterr().out
    assert main([*args, "--set", "ray.num_cpus=1", "--out", str(tmp_path / "b")]) == 0
    shards_a = sorted((tmp_path / "a" / "ocr" / "shards").glob("*.tar"))
    assert shards_a and [p.read_bytes() for p in shards_a] == [
        p.read_bytes() for p in sorted((tmp_path / "b" / "ocr" / "shards").glob("*.tar"))
    ]  # same seed, same bytes
    assert main(["validate", str(tmp_path / "a")]) == 0
    sheet = tmp_path / "sheet.png"
    assert main(["inspect", str(tmp_path / "a"), "--task", "ocr", "--out", str(sheet), "--n", "16"]) == 0
    assert "16 samples" in capsys.readouterr().out
    with Image.open(sheet) as image:
        assert image.width > 4 * 320 and image.height > 4 * 240
