"""Boxes and quads written in a sample's text, with the `<ref>` label each belongs to, back in pixels.

Qwen-VL normalizes a coordinate as int(v / dim * 1000) (QWENVL_FORMAT.md §3.3); drawing maps n back to
n / 1000 * dim, the left edge of the pixel band that normalizes to n (within dim / 1000 of the source value).
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.format import qwen


@dataclass(frozen=True)
class Region:
    kind: str  # "box" or "quad"
    label: str  # the <ref> text it follows ("" for a box with no ref, e.g. a ref_grounding target alone)
    points: tuple[tuple[int, int], ...]  # normalized 0..999: box (TL, BR), quad (TL, TR, BR, BL)

    def pixels(self, size: tuple[int, int]) -> tuple[tuple[float, float], ...]:
        """The points in pixels of an image of `size` (width, height)."""
        w, h = size
        return tuple((qwen.denormalize(x, w), qwen.denormalize(y, h)) for x, y in self.points)


def regions(text: str) -> list[Region]:
    """Every box and quad in `text` in order. A region takes the label of the `<ref>` right before it (or before
    the run of boxes it continues: `<ref>bees</ref><box>…</box><box>…</box>`)."""
    found: list[Region] = []
    label, end = "", -1
    for m in qwen.REGION.finditer(text):
        adjacent = m.start() == end  # nothing between this token and the previous ref/box/quad
        if m.group("ref") is not None:
            label = m.group("ref").strip()
        elif m.group("quad") is not None:
            points = tuple((int(x), int(y)) for x, y in qwen.POINT.findall(m.group("quad")))
            found.append(Region("quad", label if adjacent else "", points))
        else:
            x1, y1, x2, y2 = (int(v) for v in m.groups()[1:5])
            found.append(Region("box", label if adjacent else "", ((x1, y1), (x2, y2))))
        end = m.end()
    return found
