"""Qwen-VL task samples in the chat formats of Qwen2-VL and DeepSeek-VL2 (issue 21).

Qwen2-VL (`--format qwen2vl`, `qwen2vl.json`): the messages its chat template and `qwen_vl_utils.process_vision_info`
read, `{"id", "messages": [{"role": "user", "content": [{"type": "image", "image": PATH}, {"type": "text",
"text": ...}]}, {"role": "assistant", "content": [{"type": "text", "text": ...}]}]}`. Qwen-VL's markup becomes
Qwen2-VL's special tokens on the same 0-1000 grid: `<ref>x</ref>` -> `<|object_ref_start|>x<|object_ref_end|>`,
`<box>(x1,y1),(x2,y2)</box>` -> `<|box_start|>(x1,y1),(x2,y2)<|box_end|>`, `<quad>..</quad>` ->
`<|quad_start|>..<|quad_end|>`.

DeepSeek-VL2 (`--format deepseek_vl2`, `deepseek_vl2.json`): the conversation its README and
`DeepseekVLV2Processor` take, `{"id", "conversation": [{"role": "<|User|>", "content": "<image>\\n...", "images":
[PATH]}, {"role": "<|Assistant|>", "content": ...}]}`. `<ref>x</ref>` -> `<|ref|>x<|/ref|>`; a run of boxes ->
`<|det|>[[x1, y1, x2, y2], ...]<|/det|>` on its 0-999 grid (round(v * 999 / 1000)); a quad becomes the box
around it (DeepSeek-VL2 documents boxes only). Referring grounding answers repeat the expression before the box,
as the README's example does (`<|ref|>The giraffe at the back.<|/ref|><|det|>[[580, 270, 999, 900]]<|/det|>`);
tasks that answer with boxes to a plain prompt (grounded captions, OCR) start the prompt with `<|grounding|>`.

The `<img>` tags go (images are listed beside the text) and so does `<|endoftext|>`; all other text is kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curate.core.storage import exists
from curate.format import qwen

# DeepSeek-VL2's markup, for the checks (Qwen-VL's patterns are in curate.format.qwen)
DET = re.compile(r"<\|det\|>\[(\[\d+, \d+, \d+, \d+\](?:, )?)+\]<\|/det\|>")
DET_BODY = re.compile(r"<\|det\|>(.*?)<\|/det\|>")
NUMBER = re.compile(r"\d+")
DS_USER, DS_ASSISTANT, DS_IMAGE = "<|User|>", "<|Assistant|>", "<image>"
QWEN2_TOKENS = {"<ref>": "<|object_ref_start|>", "</ref>": "<|object_ref_end|>", "<box>": "<|box_start|>",
                "</box>": "<|box_end|>", "<quad>": "<|quad_start|>", "</quad>": "<|quad_end|>"}  # fmt: skip


def _strip(text: str | None) -> str:
    return qwen.IMAGE_SPAN.sub("", text or "").replace(qwen.EOS, "")


# ---------------------------------------------------------------------------------------------- Qwen2-VL


def qwen2vl_text(text: str | None) -> str:
    text = _strip(text)
    for old, new in QWEN2_TOKENS.items():
        text = text.replace(old, new)
    return text


def qwen2vl_record(row: dict[str, Any], image_paths: list[str]) -> dict[str, Any]:
    user = [{"type": "image", "image": p} for p in image_paths]
    prompt = qwen2vl_text(row["prefix"]).strip()
    user += [{"type": "text", "text": prompt}] if prompt else []
    answer = [{"type": "text", "text": qwen2vl_text(row["target"]).strip()}]
    return {
        "id": row["key"],
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
    }


def qwen2vl_problems(item: dict[str, Any], root: Path) -> list[str]:
    """What would break Qwen2-VL's chat template or vision loader: roles other than user then assistant, an
    image outside a user turn or missing on disk, unbalanced special tokens, a leftover Qwen-VL tag."""
    messages = item.get("messages") or []
    problems = [] if [m.get("role") for m in messages] == ["user", "assistant"] else ["roles are not user, assistant"]
    parts = [(m.get("role"), c) for m in messages for c in m.get("content") or []]
    images = [c.get("image") for role, c in parts if c.get("type") == "image"]
    if any(c.get("type") == "image" for role, c in parts if role != "user"):
        problems.append("an image outside the user turn")
    problems += [f"image {p} missing" for p in images if not exists(root / str(p))]
    text = "".join(c.get("text", "") for _, c in parts)
    for open_token, close_token in (("<|object_ref_start|>", "<|object_ref_end|>"), ("<|box_start|>", "<|box_end|>")):
        if text.count(open_token) != text.count(close_token):
            problems.append(f"unbalanced {open_token}")
    problems += [f"Qwen-VL tag {tag} left" for tag in ("<ref>", "<box>", "<quad>", "<img>") if tag in text]
    return problems


# ---------------------------------------------------------------------------------------------- DeepSeek-VL2


def _det(match: re.Match[str]) -> str:
    boxes = []
    for region in qwen.REGION.finditer(match.group(0)):  # a run holds boxes and quads only
        values = [int(v) for point in qwen.POINT.findall(region.group(0)) for v in point]
        xs, ys = values[0::2], values[1::2]
        box = (min(xs), min(ys), max(xs), max(ys))
        boxes.append("[" + ", ".join(str(round(v * 999 / 1000)) for v in box) + "]")
    return "<|det|>[" + ", ".join(boxes) + "]<|/det|>"


def deepseek_text(text: str | None) -> str:
    text = qwen.REGION_RUN.sub(_det, _strip(text))
    return qwen.REF_SPAN.sub(lambda m: f"<|ref|>{m.group(1)}<|/ref|>", text)


def deepseek_record(row: dict[str, Any], image_paths: list[str]) -> dict[str, Any]:
    prompt, answer = deepseek_text(row["prefix"]).strip(), deepseek_text(row["target"]).strip()
    if row["task"] == "ref_grounding":
        expression = qwen.REF_SPAN.search(row["prefix"] or "")
        answer = f"<|ref|>{expression.group(1)}<|/ref|>{answer}" if expression else answer
        prompt += "."
    elif "<|det|>" in answer and "<|det|>" not in prompt:
        prompt = "<|grounding|>" + prompt
    content = "".join(f"{DS_IMAGE}\n" for _ in image_paths) + prompt
    user: dict[str, Any] = {"role": DS_USER, "content": content}
    if image_paths:
        user["images"] = list(image_paths)
    return {"id": row["key"], "conversation": [user, {"role": DS_ASSISTANT, "content": answer}]}


def deepseek_problems(item: dict[str, Any], root: Path) -> list[str]:
    """What DeepseekVLV2Processor would refuse or misread (our transcription of format_messages_v2): roles
    <|User|> then <|Assistant|>, as many <image> tokens in user turns as images, none in the answer, each image on
    disk; and boxes on the 0-999 grid, with no Qwen-VL tag left."""
    turns = item.get("conversation") or []
    problems = [] if [t.get("role") for t in turns] == [DS_USER, DS_ASSISTANT] else ["roles are not User, Assistant"]
    images = [p for t in turns for p in t.get("images") or []]
    count = sum(t.get("content", "").count(DS_IMAGE) for t in turns if t.get("role") == DS_USER)
    if count != len(images):
        problems.append(f"{count} {DS_IMAGE} tokens for {len(images)} images")
    if any(DS_IMAGE in t.get("content", "") for t in turns if t.get("role") == DS_ASSISTANT):
        problems.append(f"{DS_IMAGE} in the answer")
    problems += [f"image {p} missing" for p in images if not exists(root / p)]
    text = "".join(t.get("content", "") for t in turns)
    if text.count("<|det|>") != len(DET.findall(text)):
        problems.append("a <|det|> that is not a list of boxes")
    if any(int(v) > 999 for det in DET_BODY.findall(text) for v in NUMBER.findall(det)):
        problems.append("a coordinate over 999")
    problems += [f"Qwen-VL tag {tag} left" for tag in ("<ref>", "<box>", "<quad>", "<img>") if tag in text]
    return problems
