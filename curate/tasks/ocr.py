"""OCR with grounding (QWENVL_FORMAT.md §2.3 OCR row, §3.4): every text line as <ref> line</ref><quad>…</quad>."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from curate.format import qwen
from curate.tasks.base import Built, Example, Skip, image_problem, make_key

UNREADABLE = {"###", ""}  # ICDAR's "don't care" mark


def clockwise_from_top_left(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """The 4 corners ordered TL, TR, BR, BL (§3.4; synthtiger's order), whatever order the source used."""
    cx = sum(p[0] for p in points) / 4
    cy = sum(p[1] for p in points) / 4
    ring = sorted(((float(x), float(y)) for x, y in points), key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
    first = min(range(4), key=lambda i: ring[i][0] + ring[i][1])  # image y points down: clockwise = atan2 rising
    return ring[first:] + ring[:first]


@dataclass(frozen=True, kw_only=True)
class Ocr:
    """<img>p</img>OCR with grounding: → `<ref> line</ref><quad>(…),(…),(…),(…)</quad>…<eos>`."""

    name: ClassVar[str] = "ocr"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        if problem := image_problem(record):
            yield problem
            return
        size = (record["width"], record["height"])
        parts = []
        for line in record["lines"]:
            text = " ".join(qwen.sanitize(line.get("text") or "").split())
            if text in UNREADABLE:
                yield Skip("unreadable_line")
                continue
            parts.append(qwen.ref(" " + text) + qwen.quad(clockwise_from_top_left(line["quad"]), size))
        if not parts:
            yield Skip("no_text_lines")
            return
        yield Example(
            task=self.name,
            source=record["source"],
            key=make_key(record["source"], record["id"]),
            images=(record["image"],),
            prefix=qwen.img(record["image"]) + qwen.PROMPTS["ocr"]["en"],
            target="".join(parts) + qwen.EOS,
        )
