"""Synthetic coloured shapes with exact boxes: a grounding set whose answers are known by construction, to check
that a model trained on our shards learns to localize (issue 6, AC 3). Each scene also has a caption naming
every shape (`grounding`: the names are the grounded phrases) and one question with its answer (`vqa`), so the
embedded demo covers all seven tasks offline (issue 21)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw

from curate.core.errors import ConfigError
from curate.sources.base import Source

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (150, 50, 180),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour: tuple) -> None:
    """Fill `shape` so that its ink touches all four sides of `box` (the box is the tight bounding box)."""
    x1, y1, x2, y2 = box
    if shape == "circle":
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour)
    elif shape == "square":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
    else:
        draw.polygon([((x1 + x2) / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=colour)


@dataclass(frozen=True, kw_only=True)
class Shapes(Source):
    """`count` images of 1..max_objects shapes, each a distinct (colour, shape) pair, named 'the red circle'."""

    kind: ClassVar[str] = "shapes"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ref_grounding", "grounded_caption", "grounding", "vqa")
    default_tasks: ClassVar[tuple[str, ...]] = ("ref_grounding", "grounded_caption")
    count: int = 10000
    size: int = 128  # square images, pixels
    min_objects: int = 1
    max_objects: int = 3
    min_side: float = 0.15  # shape side as a share of the image side
    max_side: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.count < 1 or self.size < 16 or not 1 <= self.min_objects <= self.max_objects <= 6:
            raise ConfigError("shapes: count >= 1, size >= 16, 1 <= min_objects <= max_objects <= 6")
        if not 0 < self.min_side <= self.max_side < 1:
            raise ConfigError("shapes: 0 < min_side <= max_side < 1")

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            yield self.record(i)

    def chunks(self, size: int) -> list[Any]:
        """Id ranges: image i depends on (seed, i) only."""
        return [[start, min(start + size, self.count)] for start in range(0, self.count, size)]

    def read_chunk(self, chunk: Any) -> Iterator[dict[str, Any]]:
        start, stop = chunk
        for i in range(start, stop):
            yield self.record(i)

    def _place(self, rng: np.random.Generator, taken: list[list[int]]) -> tuple[int, int, int, int] | None:
        """A square box that overlaps none of `taken` (20 tries)."""
        for _ in range(20):
            side = max(2, int(rng.uniform(self.min_side, self.max_side) * self.size))  # a shape needs 2 px
            x1, y1 = (int(v) for v in rng.integers(0, self.size - side + 1, 2))
            box = (x1, y1, x1 + side, y1 + side)
            if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
                return box
        return None

    def record(self, i: int) -> dict[str, Any]:
        img, refs = self.draw(i)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=95)
        rng = np.random.default_rng([self.seed, i, 1])  # the text's own stream: the images stay as they were
        question, answer = scene_question(refs, rng)
        return {
            "source": self.name,
            "id": f"{i:07d}",
            "image": f"{self.name}/{i:07d}.jpg",
            "image_bytes": out.getvalue(),
            "width": self.size,
            "height": self.size,
            "refs": refs,
            "captions": [scene_caption(refs, rng)],
            "objects": [{"phrase": indefinite(r["expression"]), "bbox": r["bbox"]} for r in refs],
            "question": question,
            "answers": [answer],
        }

    def draw(self, i: int) -> tuple[Image.Image, list[dict[str, Any]]]:
        """Image i and its refs ({expression, bbox in pixels}), deterministic per (seed, i)."""
        rng = np.random.default_rng([self.seed, i])
        background = tuple(int(v) for v in rng.integers(200, 256, 3))
        img = Image.new("RGB", (self.size, self.size), background)
        draw = ImageDraw.Draw(img)
        kinds = [(c, s) for c in COLOURS for s in SHAPES]
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        refs: list[dict[str, Any]] = []
        for k in rng.permutation(len(kinds))[:n]:
            colour, shape = kinds[k]
            box = self._place(rng, [r["bbox"] for r in refs])
            if box is None:  # no free spot: fewer shapes, never an occluded one whose box would lie
                continue
            draw_shape(draw, shape, box, COLOURS[colour])
            refs.append({"expression": f"the {colour} {shape}", "bbox": list(box)})
        return img, refs


CAPTION_OPENINGS = ("A drawing of", "A picture with", "Shapes on a plain background:", "An image showing")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")


def indefinite(expression: str) -> str:
    """'the orange circle' -> 'an orange circle', 'the red square' -> 'a red square'."""
    words = expression.removeprefix("the ")
    return ("an " if words[:1] in "aeiou" else "a ") + words


def scene_caption(refs: list[dict[str, Any]], rng: np.random.Generator) -> str:
    """'A drawing of a red circle and a blue square.': every shape, left to right, named as its `phrase`."""
    names = [indefinite(r["expression"]) for r in sorted(refs, key=lambda r: (r["bbox"][0], r["bbox"][1]))]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{CAPTION_OPENINGS[int(rng.integers(len(CAPTION_OPENINGS)))]} {listed}."


def scene_question(refs: list[dict[str, Any]], rng: np.random.Generator) -> tuple[str, str]:
    """One question whose answer the scene fixes: how many shapes, the colour of a shape kind that appears once,
    the kind of a colour that appears once, or whether a (colour, shape) pair is there (yes or no)."""
    pairs = [tuple(r["expression"].split()[1:]) for r in refs]  # (colour, shape)
    kind = int(rng.integers(4))
    if kind == 1:
        unique = [p for p in pairs if [q[1] for q in pairs].count(p[1]) == 1]
        if unique:
            colour, shape = unique[int(rng.integers(len(unique)))]
            return f"What colour is the {shape}?", colour
    if kind == 2:
        unique = [p for p in pairs if [q[0] for q in pairs].count(p[0]) == 1]
        if unique:
            colour, shape = unique[int(rng.integers(len(unique)))]
            return f"What shape is the {colour} one?", shape
    if kind == 3:
        present = bool(rng.integers(2))
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in pairs]
        colour, shape = pairs[int(rng.integers(len(pairs)))] if present else absent[int(rng.integers(len(absent)))]
        return f"Is there {indefinite(f'the {colour} {shape}')}?", "yes" if present else "no"
    return "How many shapes are there?", NUMBERS[len(pairs)]
