"""Grounding tasks (QWENVL_FORMAT.md §2.3 rows 4-6): grounded captions (GRIT style, built from COCO captions +
instances), referring grounding, and grounded captioning, its dual (§2.1: same region-expression records)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from curate.format import qwen
from curate.tasks.base import Built, Example, Skip, image_problem, language_of, make_key

SYNONYMS_FILE = Path(__file__).resolve().parent.parent / "assets" / "coco_synonyms.yaml"
DETERMINERS = "a an the one two three four five six several some many his her their its this that these those"
PLURAL_DETERMINERS = {"two", "three", "four", "five", "six", "several", "some", "many", "these", "those"}
MAX_BOXES = 8  # boxes after one </ref>; more crowd the caption without adding signal


@dataclass(frozen=True)
class Phrase:
    start: int  # includes the leading space: `…of<ref> bees</ref>` (§2.3, README model output)
    end: int
    boxes: tuple[tuple[float, float, float, float], ...]


def grounded_text(text: str, phrases: Sequence[Phrase], size: tuple[float, float]) -> str:
    """`text` with each phrase wrapped in <ref> and followed by its boxes; phrases must not overlap."""
    out, last = [], 0
    for p in sorted(phrases, key=lambda p: p.start):
        if p.start < last:
            raise ValueError("grounded phrases overlap; refs never nest")
        out += [qwen.sanitize(text[last : p.start]), qwen.ref(text[p.start : p.end])]
        out += [qwen.box(b, size) for b in p.boxes]
        last = p.end
    return "".join(out) + qwen.sanitize(text[last:])


@functools.cache
def _category_patterns() -> tuple[tuple[str, re.Pattern[str], frozenset[str]], ...]:
    """(category, regex for '[determiner [word]] noun', plural-only nouns) per COCO category."""
    spec = yaml.safe_load(SYNONYMS_FILE.read_text())
    patterns = []
    for category, terms in spec.items():
        singular = {t.split("|")[0] for t in terms}
        plural = {t.split("|")[1] for t in terms}
        nouns = sorted(singular | plural, key=len, reverse=True)
        noun_re = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in nouns)
        det_re = "|".join(DETERMINERS.split())
        regex = re.compile(rf"\b(?:(?P<det>{det_re})\s+(?:[a-z]+\s+)?)?(?P<noun>{noun_re})\b", re.I)
        patterns.append((category, regex, frozenset(plural - singular)))
    return tuple(patterns)


def find_phrases(text: str, objects: Sequence[Mapping[str, Any]]) -> tuple[list[Phrase], int]:
    """Non-overlapping category mentions that can be grounded unambiguously, and how many were ambiguous
    (a singular noun with several instances of its category). Objects are COCO-style ({category, bbox}) or carry
    the exact words that name them ({phrase, bbox})."""
    by_category: dict[str, list] = {}
    for obj in sorted(objects, key=lambda o: -(o["bbox"][2] - o["bbox"][0]) * (o["bbox"][3] - o["bbox"][1])):
        by_category.setdefault(obj.get("phrase") or obj["category"], []).append(tuple(obj["bbox"]))
    candidates = []
    for category, regex, plural_only in _category_patterns():
        if category not in by_category:
            continue
        for m in regex.finditer(text):
            det = (m.group("det") or "").lower()
            plural = m.group("noun").lower() in plural_only or det in PLURAL_DETERMINERS
            candidates.append((m.start(), m.end(), category, plural))
    # A source that knows the words naming each object (synthetic scenes) gives them as `phrase`: matched as is
    for phrase in sorted({o["phrase"] for o in objects if o.get("phrase")}):
        for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.I):
            candidates.append((m.start(), m.end(), phrase, False))
    phrases, ambiguous, taken_until = [], 0, -1
    for start, end, category, plural in sorted(candidates, key=lambda c: (c[0], -(c[1] - c[0]))):
        if start < taken_until:
            continue
        boxes = by_category[category]
        if not plural and len(boxes) != 1:
            ambiguous += 1
            continue
        lead = start - 1 if start > 0 and text[start - 1] == " " else start
        phrases.append(Phrase(lead, end, tuple(boxes[:MAX_BOXES])))
        taken_until = end
    return phrases, ambiguous


@dataclass(frozen=True, kw_only=True)
class Grounding:
    """<img>p</img>Generate the caption in English with grounding: → ` A<ref> dog</ref><box>…</box> runs<eos>`."""

    name: ClassVar[str] = "grounding"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        if problem := image_problem(record):
            yield problem
            return
        size = (record["width"], record["height"])
        for i, caption in enumerate(record["captions"]):
            text = " " + " ".join(qwen.sanitize(caption or "").split())
            phrases, ambiguous = find_phrases(text, record.get("objects") or [])
            for _ in range(ambiguous):
                yield Skip("ambiguous_phrase")
            if not phrases:
                yield Skip("no_grounded_phrase")
                continue
            prompt = qwen.PROMPTS["grounding"][language_of(text)]
            yield Example(
                task=self.name,
                source=record["source"],
                key=make_key(record["source"], record["id"], i),
                images=(record["image"],),
                prefix=qwen.img(record["image"]) + prompt,
                target=grounded_text(text, phrases, size) + qwen.EOS,
            )


def _region_refs(record: Mapping[str, Any]) -> Built:
    """(index, expression, box) of usable region-expression pairs; Skips for the rest."""
    if problem := image_problem(record):
        yield problem
        return
    for i, item in enumerate(record["refs"]):
        expression = " ".join(qwen.sanitize(item.get("expression") or "").split())
        if item.get("bbox") is None:
            yield Skip("no_box")
        elif not expression:
            yield Skip("empty_expression")
        else:
            yield i, expression, item["bbox"]  # type: ignore[misc]


@dataclass(frozen=True, kw_only=True)
class RefGrounding:
    """<img>p</img><ref>expr</ref> → `<box>(x1,y1),(x2,y2)</box><eos>` (eval_mm/evaluate_grounding.py form)."""

    name: ClassVar[str] = "ref_grounding"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        size = (record["width"], record["height"])
        for item in _region_refs(record):
            if isinstance(item, Skip):
                yield item
                continue
            i, expression, bbox = item
            yield Example(
                task=self.name,
                source=record["source"],
                key=make_key(record["source"], record["id"], i),
                images=(record["image"],),
                prefix=qwen.img(record["image"]) + qwen.ref(expression),
                target=qwen.box(bbox, size) + qwen.EOS,
            )


@dataclass(frozen=True, kw_only=True)
class GroundedCaption:
    """<img>p</img><ref>This</ref><box>…</box> is → ` {expression}<eos>` (zh: <ref>这</ref><box>…</box>是)."""

    name: ClassVar[str] = "grounded_caption"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        size = (record["width"], record["height"])
        for item in _region_refs(record):
            if isinstance(item, Skip):
                yield item
                continue
            i, expression, bbox = item
            lang = language_of(expression)
            this, verb = qwen.PROMPTS["grounded_caption"][lang]
            yield Example(
                task=self.name,
                source=record["source"],
                key=make_key(record["source"], record["id"], i),
                images=(record["image"],),
                prefix=qwen.img(record["image"]) + qwen.ref(this) + qwen.box(bbox, size) + verb,
                target=(" " if lang == "en" else "") + expression + qwen.EOS,
            )
