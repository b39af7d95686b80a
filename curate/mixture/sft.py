"""Stage-3 SFT export in Qwen-VL's finetune JSON (QWENVL_FORMAT.md §4.5, §5): multi-turn conversations about
one image, and conversations that bring in a second picture, built from stage-2 task samples as they stream
past (memory: one image's questions, and a fixed-size sample of captions). Their images are written beside
sft.json (`sft_images/`), so every `<img>` path resolves to a file of the output.

Picture numbers run across the whole conversation (`Picture 1: <img>a</img>\\n`, later `Picture 2: …`), as
web_demo_mm.py keeps a conversation-global index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from curate.format import qwen

DESCRIBE = {"English": "Describe this picture.", "Chinese": "描述这张图片。"}
FOLLOW_UP = {"English": "And this one?", "Chinese": "那这张呢？"}
SFT_IMAGES = "sft_images"  # the conversations' images, in the mix output beside sft.json


def _answer(target: str) -> str:
    return target.removesuffix(qwen.EOS).strip()


def _picture(n: int, image: str) -> str:
    return f"Picture {n}: {qwen.img(image)}\n"


def _question(row: dict[str, Any]) -> tuple[str, str, str] | None:
    """(image, question, answer) of a VQA or referring-grounding sample, else None."""
    if row["task"] == "vqa" and (m := qwen.VQA_PREFIX.match(row["prefix"])):
        return m["image"], m["question"].strip(), _answer(row["target"])
    if row["task"] == "ref_grounding" and (m := qwen.REF_PREFIX.match(row["prefix"])):
        answer = qwen.ref(m["expression"]) + _answer(row["target"])  # README chat form: <ref>x</ref><box>…</box>
        return m["image"], f"Find {m['expression']} in the picture.", answer
    return None


def question_conversations(rows: Iterable[dict[str, Any]], max_turns: int) -> Iterator[tuple[dict, list[tuple]]]:
    """(row of the image, [(question, answer)]) for each run of consecutive VQA / referring samples about one
    image with at least two questions (builders emit an image's questions together). Memory: one run."""
    image, first, pairs = None, None, []
    for row in rows:
        parsed = _question(row)
        if parsed is None:
            continue
        if parsed[0] != image:
            if len(pairs) >= 2:
                yield first, pairs[:max_turns]
            image, first, pairs = parsed[0], row, []
        pairs.append(parsed[1:])
    if len(pairs) >= 2:
        yield first, pairs[:max_turns]


def caption_sample(rows: Iterable[dict[str, Any]], size: int, seed: int) -> list[tuple[dict, str, str]]:
    """A seeded uniform sample (reservoir) of `size` captions as (row, language, caption): memory is `size`."""
    rng = np.random.default_rng(seed)
    chosen: list[tuple[dict, str, str]] = []
    seen = 0
    for row in rows:
        m = qwen.CAPTION_PREFIX.match(row["prefix"]) if row["task"] == "caption" else None
        if not m:
            continue
        seen += 1
        item = (row, m["lang"], _answer(row["target"]))
        if len(chosen) < size:
            chosen.append(item)
        elif (j := int(rng.integers(seen))) < size:
            chosen[j] = item
    return chosen


def question_conversation(n: int, image: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    convo = []
    for i, (question, answer) in enumerate(pairs):
        convo += [
            {"from": "user", "value": (_picture(1, image) if i == 0 else "") + question},
            {"from": "assistant", "value": answer},
        ]
    return {"id": f"identity_{n}", "conversations": convo}


def caption_dialogues(captions: list[tuple[dict, str, str]], start: int, count: int, seed: int) -> Iterator[tuple]:
    """(conversation, row a, row b): two pictures of the same caption language, described one after the other;
    numbered from `start` + 1 while fewer than `count` are made. Captions are paired along seeded permutations,
    pass after pass, never the same two captions twice, until `count` or a pass adds nothing (a small pool of
    local images still fills the export). Images are named by `image_name(row)`."""
    rng = np.random.default_rng(seed)
    made, used = start, set()
    while made < count and len(captions) > 1:
        before = made
        order = rng.permutation(len(captions))
        for a, b in zip(order[0::2], order[1::2], strict=False):
            (row_a, lang, cap_a), (row_b, lang_b, cap_b) = captions[a], captions[b]
            pair = (min(a, b), max(a, b))
            if made >= count or pair in used or row_a["images"][0] == row_b["images"][0] or lang != lang_b:
                continue
            used.add(pair)
            made += 1
            convo = {
                "id": f"identity_{made}",
                "conversations": [
                    {"from": "user", "value": _picture(1, image_name(row_a)) + DESCRIBE[lang]},
                    {"from": "assistant", "value": cap_a},
                    {"from": "user", "value": _picture(2, image_name(row_b)) + FOLLOW_UP[lang]},
                    {"from": "assistant", "value": cap_b},
                ],
            }
            yield convo, row_a, row_b
        if made == before:
            return


def image_name(row: dict[str, Any]) -> str:
    """Where a conversation's image is written in the mix output (relative to it): named by a hash of the
    sample's image path, so questions about one image share one file and any path fits the 256-byte limit."""
    return f"{SFT_IMAGES}/{hashlib.sha1(row['images'][0].encode()).hexdigest()}.jpg"


def check_conversation(item: dict[str, Any]) -> list[str]:
    """Qwen-VL finetune.py's rules (§4.5-4.7): roles user/assistant alternating from user, Picture numbers
    counting up across the conversation, image spans ≤ 256 bytes, no literal chat/end tokens in content."""
    errors = []
    convo = item.get("conversations")
    if not isinstance(item.get("id"), str) or not isinstance(convo, list) or not convo:
        return ["needs an id string and a non-empty conversations list"]
    expected_picture = 1
    for i, turn in enumerate(convo):
        role, value = turn.get("from"), turn.get("value")
        if role != ("user" if i % 2 == 0 else "assistant"):
            errors.append(f"turn {i}: from must be {'user' if i % 2 == 0 else 'assistant'}, got {role!r}")
        if not isinstance(value, str) or not value:
            errors.append(f"turn {i}: empty value")
            continue
        if qwen.NOT_IN_CHAT.search(value):
            errors.append(f"turn {i}: literal special token in content")
        for number, path in qwen.PICTURE.findall(value):
            if int(number) != expected_picture:
                errors.append(f"turn {i}: Picture {number}, expected Picture {expected_picture}")
            expected_picture += 1
            if len(path.encode()) > qwen.MAX_IMAGE_PATH_BYTES:
                errors.append(f"turn {i}: image path over 256 bytes")
        if value.count(qwen.IMG_START) != len(qwen.PICTURE.findall(value)):
            errors.append(f"turn {i}: every <img> needs 'Picture N: ' before it and a newline after it")
    return errors
