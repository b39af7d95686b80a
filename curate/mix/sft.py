"""Stage-3 SFT export in Qwen-VL's finetune JSON (QWENVL_FORMAT.md §4.5, §5): multi-turn conversations about
one image, and conversations that bring in a second picture, built from stage-2 task samples.

Picture numbers run across the whole conversation (`Picture 1: <img>a</img>\\n`, later `Picture 2: …`), as
web_demo_mm.py keeps a conversation-global index.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

from curate.tasks import qwen

QUESTION = re.compile(r"^<img>(?P<image>.*?)</img>(?P<question>.*) Answer:$", re.S)
REF_PREFIX = re.compile(r"^<img>(?P<image>.*?)</img><ref>(?P<expression>.*)</ref>$", re.S)
CAPTION_PREFIX = re.compile(r"^<img>(?P<image>.*?)</img>Generate the caption in (?P<lang>English|Chinese):$")
FORBIDDEN = re.compile(r"<\|(?:endoftext|im_start|im_end|extra_\d+)\|>|<imgpad>")
PICTURE = re.compile(r"Picture (\d+): <img>(.*?)</img>\n")
DESCRIBE = {"English": "Describe this picture.", "Chinese": "描述这张图片。"}
FOLLOW_UP = {"English": "And this one?", "Chinese": "那这张呢？"}


def _answer(target: str) -> str:
    return target.removesuffix(qwen.EOS).strip()


def _picture(n: int, image: str) -> str:
    return f"Picture {n}: {qwen.img(image)}\n"


def question_turns(samples: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) pairs per image from VQA and referring-grounding samples."""
    turns: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for s in samples:
        if s["task"] == "vqa" and (m := QUESTION.match(s["prefix"])):
            turns[m["image"]].append((m["question"].strip(), _answer(s["target"])))
        elif s["task"] == "ref_grounding" and (m := REF_PREFIX.match(s["prefix"])):
            answer = qwen.ref(m["expression"]) + _answer(s["target"])  # README chat form: <ref>x</ref><box>…</box>
            turns[m["image"]].append((f"Find {m['expression']} in the picture.", answer))
    return turns


def conversations(samples: list[dict[str, Any]], count: int, seed: int, max_turns: int = 4) -> Iterator[dict]:
    """Up to `count` conversations: several questions about one image, then two-picture caption dialogues."""
    rng = np.random.default_rng(seed)
    made = 0
    turns = question_turns(samples)
    for image in sorted(turns):
        pairs = turns[image][:max_turns]
        if len(pairs) < 2 or made >= count:
            continue
        convo = []
        for i, (question, answer) in enumerate(pairs):
            convo += [
                {"from": "user", "value": (_picture(1, image) if i == 0 else "") + question},
                {"from": "assistant", "value": answer},
            ]
        made += 1
        yield {"id": f"identity_{made}", "conversations": convo}
    captions = [
        (m["image"], m["lang"], _answer(s["target"]))
        for s in samples
        if s["task"] == "caption" and (m := CAPTION_PREFIX.match(s["prefix"]))
    ]
    order = rng.permutation(len(captions)) if captions else []
    for a, b in zip(order[0::2], order[1::2], strict=False):
        (img_a, lang, cap_a), (img_b, lang_b, cap_b) = captions[a], captions[b]
        if made >= count or img_a == img_b or lang != lang_b:
            continue
        made += 1
        yield {
            "id": f"identity_{made}",
            "conversations": [
                {"from": "user", "value": _picture(1, img_a) + DESCRIBE[lang]},
                {"from": "assistant", "value": cap_a},
                {"from": "user", "value": _picture(2, img_b) + FOLLOW_UP[lang]},
                {"from": "assistant", "value": cap_b},
            ],
        }


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
        if FORBIDDEN.search(value):
            errors.append(f"turn {i}: literal special token in content")
        for number, path in PICTURE.findall(value):
            if int(number) != expected_picture:
                errors.append(f"turn {i}: Picture {number}, expected Picture {expected_picture}")
            expected_picture += 1
            if len(path.encode()) > qwen.MAX_IMAGE_PATH_BYTES:
                errors.append(f"turn {i}: image path over 256 bytes")
        if value.count("<img>") != len(PICTURE.findall(value)):
            errors.append(f"turn {i}: every <img> needs 'Picture N: ' before it and a newline after it")
    return errors
