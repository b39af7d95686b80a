"""Qwen-VL task samples as LLaVA conversations (issue 21): the JSON LLaVA's `LazySupervisedDataset` reads.

One record per sample: `id`, `image` (a path relative to the export folder; a list for several images; absent
for text-only samples) and `conversations`, a human turn then a gpt turn. The human turn starts with one
`<image>` line per image. Qwen-VL's text becomes LLaVA's:

- `<box>(x1,y1),(x2,y2)</box>` (0-1000 integers) -> `[x1, y1, x2, y2]` as floats in [0, 1] with 3 decimals
  (LLaVA-1.5's region format); `<quad>` -> its 8 coordinates the same way; `<ref>x</ref>` -> x;
- referring grounding and grounded captioning take LLaVA-1.5's REC / REG prompts ("Please provide the bounding
  box coordinate of the region this sentence describes: ..." / "Please provide a short description for this
  region: [...]"); other tasks keep Qwen-VL's prompt text;
- `<|endoftext|>` and the leading space of a target are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curate.format import qwen

IMAGE_TOKEN = "<image>"
REC_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: "
REG_PROMPT = "Please provide a short description for this region: "
BOX = re.compile(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>")
QUAD = re.compile(r"<quad>((?:\(\d+,\d+\),?){4})</quad>")
REF = re.compile(r"<ref>(.*?)</ref>", re.S)
IMG = re.compile(r"<img>.*?</img>", re.S)


def _floats(values: Iterable[str]) -> str:
    return "[" + ", ".join(f"{int(v) / 1000:.3f}" for v in values) + "]"


def plain(text: str) -> str:
    """Qwen-VL markup as LLaVA text: boxes and quads as normalized floats, refs unwrapped, no <img>, no EOS."""
    text = IMG.sub("", text).replace(qwen.EOS, "")
    text = BOX.sub(lambda m: " " + _floats(m.groups()), text)
    text = QUAD.sub(lambda m: " " + _floats(re.findall(r"\d+", m.group(1))), text)
    text = REF.sub(lambda m: m.group(1), text)
    return " ".join(text.split())


def conversation(row: dict[str, Any]) -> tuple[str, str]:
    """(human text without the <image> lines, gpt text) of one task sample."""
    prefix, target = row["prefix"] or "", row["target"] or ""
    if row["task"] == "ref_grounding":
        expression = REF.search(prefix)
        return REC_PROMPT + (expression.group(1) if expression else plain(prefix)), plain(target)
    if row["task"] == "grounded_caption":
        box = BOX.search(prefix)
        region = _floats(box.groups()) if box else plain(prefix)
        return REG_PROMPT + region, plain(BOX.sub("", prefix) + target)  # "This is the green square"
    return plain(prefix), plain(target)


def record(row: dict[str, Any], image_paths: list[str]) -> dict[str, Any]:
    """The LLaVA record of one sample whose images were written to `image_paths` (relative to the export)."""
    human, gpt = conversation(row)
    out: dict[str, Any] = {"id": row["key"]}
    if image_paths:
        out["image"] = image_paths[0] if len(image_paths) == 1 else image_paths
    lines = [IMAGE_TOKEN] * len(image_paths)
    out["conversations"] = [
        {"from": "human", "value": "\n".join([*lines, human]) if human else "\n".join(lines)},
        {"from": "gpt", "value": gpt},
    ]
    return out


def loader_problems(item: dict[str, Any], root: Path) -> list[str]:
    """What LLaVA's data loader would refuse or misread in one record (our transcription of its rules: roles
    alternate human/gpt starting with human, one `<image>` per image and none without, each image file exists)."""
    problems = []
    turns = item.get("conversations") or []
    roles = [t.get("from") for t in turns]
    if not turns or roles != ["human", "gpt"] * (len(turns) // 2) or len(turns) % 2:
        problems.append(f"roles {roles} do not alternate human/gpt")
    images = item.get("image")
    images = [] if images is None else [images] if isinstance(images, str) else list(images)
    count = sum(t.get("value", "").count(IMAGE_TOKEN) for t in turns)
    if count != len(images):
        problems.append(f"{count} {IMAGE_TOKEN} tokens for {len(images)} images")
    if any(IMAGE_TOKEN in t.get("value", "") for t in turns if t.get("from") != "human"):
        problems.append(f"{IMAGE_TOKEN} in a gpt turn")
    problems += [f"image {p} missing" for p in images if not (root / p).is_file()]
    return problems
