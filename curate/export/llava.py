"""Qwen-VL task samples as LLaVA conversations (issue 21): the JSON LLaVA's `LazySupervisedDataset` reads.

One record per sample: `id`, `image` (a path relative to the export folder; a list for several images; absent
for text-only samples) and `conversations`, a human turn then a gpt turn. The human turn starts with one
`<image>` line per image. Qwen-VL's text becomes LLaVA's:

- `<box>(x1,y1),(x2,y2)</box>` (0-1000 integers over the image) -> `[x1, y1, x2, y2]` as floats in [0, 1]
  with 3 decimals over the image padded to a centred square, as LLaVA-1.5 trains (`image_aspect_ratio: pad`
  expands each image to a square before the ViT, and its region data is normalized to that square); `<quad>` ->
  its 8 coordinates the same way; `<ref>x</ref>` -> x. Without a recorded size the image is taken as square;
- referring grounding and grounded captioning take LLaVA-1.5's REC / REG prompts ("Please provide the bounding
  box coordinate of the region this sentence describes: ..." / "Please provide a short description for this
  region: [...]"); other tasks keep Qwen-VL's prompt text;
- `<|endoftext|>` and the leading space of a target are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curate.core.storage import exists
from curate.format import qwen

IMAGE_TOKEN = "<image>"
REC_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: "
REG_PROMPT = "Please provide a short description for this region: "


def _floats(values: Iterable[str], size: tuple[int, int] | None = None) -> str:
    """Qwen-VL 0-1000 coordinates (x, y alternating) as LLaVA-1.5 floats over the image padded to a centred
    square of side max(width, height)."""
    w, h = size or (1, 1)
    side = max(w, h)
    offsets, scales = ((side - w) / 2, (side - h) / 2), (w, h)
    out = [(int(v) / 1000 * scales[i % 2] + offsets[i % 2]) / side for i, v in enumerate(values)]
    return "[" + ", ".join(f"{v:.3f}" for v in out) + "]"


def _values(points: str) -> list[str]:
    """The coordinates of `(x,y),(x,y),...` in order, x and y alternating."""
    return [v for point in qwen.POINT.findall(points) for v in point]


def plain(text: str, size: tuple[int, int] | None = None) -> str:
    """Qwen-VL markup as LLaVA text: boxes and quads as floats (over the padded square of an image of `size`),
    refs unwrapped, no <img>, no EOS."""
    text = qwen.IMAGE_SPAN.sub("", text).replace(qwen.EOS, "")
    text = qwen.BOX_SPAN.sub(lambda m: " " + _floats(m.groups(), size) + " ", text)
    text = qwen.QUAD_SPAN.sub(lambda m: " " + _floats(_values(m.group(1)), size) + " ", text)
    text = qwen.REF_SPAN.sub(lambda m: m.group(1), text)
    return " ".join(text.split()).replace(" .", ".").replace(" ,", ",")


def conversation(row: dict[str, Any]) -> tuple[str, str]:
    """(human text without the <image> lines, gpt text) of one task sample."""
    prefix, target = row["prefix"] or "", row["target"] or ""
    sizes = row.get("image_sizes") or []
    size = tuple(sizes[0]) if sizes and sizes[0] else None
    if row["task"] == "ref_grounding":
        expression = qwen.REF_SPAN.search(prefix)
        return REC_PROMPT + (expression.group(1) if expression else plain(prefix, size)), plain(target, size)
    if row["task"] == "grounded_caption":
        box = qwen.BOX_SPAN.search(prefix)
        region = _floats(box.groups(), size) if box else plain(prefix, size)
        return REG_PROMPT + region, plain(qwen.BOX_SPAN.sub("", prefix) + target)  # "This is the green square"
    return plain(prefix, size), plain(target, size)


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
    problems += [f"image {p} missing" for p in images if not exists(root / p)]
    return problems
