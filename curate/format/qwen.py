"""The Qwen-VL text format in one place (QWENVL_FORMAT.md §2.3, §3, §4, §8): the helpers that write it (builders
compose these and never type a `<`) and every pattern that reads it (the format rules, regions, the tokenizer,
the mixture's SFT export, the trainer's evaluation, the caption filter).

Coordinates are normalized as int(v / dim * 1000) clamped to 0..999 against the ORIGINAL image size (§3.3,
QwenLM/Qwen-VL#170).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

EOS = "<|endoftext|>"
IMG_START, IMG_END = "<img>", "</img>"
REF_START, REF_END = "<ref>", "</ref>"
BOX_START, BOX_END = "<box>", "</box>"
QUAD_START, QUAD_END = "<quad>", "</quad>"
MAX_IMAGE_PATH_BYTES = 256  # the tokenizer pads/limits an <img> span to 256 byte tokens (§3.2)

# The special tokens a Qwen-VL sample can hold, in the order our byte-level tokenizers number them (§3.1).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<img>",
    "</img>",
    "<imgpad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<quad>",
    "</quad>",
)
EXTRA_TOKENS = tuple(f"<|extra_{i}|>" for i in range(205))  # §3.1: reserved, between <|im_end|> and <ref>
# Qwen-VL's tokenizer vocabulary of special tokens, in id order from 151643 (§3.1).
QWEN_SPECIAL_ORDER = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", *EXTRA_TOKENS,
    "<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>",
)  # fmt: skip
IMAGE_SLOTS = 256  # an <img>…</img> span is <img> + 256 positions + </img>: 258 tokens (§3.2)
TASK_NAMES = ("caption", "vqa", "grounding", "ref_grounding", "grounded_caption", "ocr", "text")  # §2.3

# ---------------------------------------------------------------------------------------------- reading
# Every pattern that parses the format. Nothing outside this module compiles its own.
# Every string the Qwen tokenizer turns into a special token (allowed_special="all", §8.5).
SPECIAL_TOKEN = re.compile(r"</?(?:img|ref|box|quad)>|<imgpad>|<\|(?:endoftext|im_start|im_end|extra_\d+)\|>")
IMAGE_SPAN = re.compile(r"<img>(.*?)</img>", re.S)  # group 1: the image path or URL
# Tokenizer pieces: whole image spans and special-token strings; split() keeps them (§3.2).
PIECE = re.compile(
    r"(<img>.*?</img>|</?(?:img|ref|box|quad)>|<imgpad>|<\|(?:endoftext|im_start|im_end|extra_\d+)\|>)", re.S
)
TAG = re.compile(r"</?(?:img|ref|box|quad)>")
BOX_BODY = re.compile(r"\((\d{1,3}),(\d{1,3})\),\((\d{1,3}),(\d{1,3})\)")  # exactly four integers, `),(` no space
QUAD_BODY = re.compile(r"\((\d{1,3}),(\d{1,3})\)(?:,\((\d{1,3}),(\d{1,3})\)){3}")
CHAT_TOKEN = re.compile(r"<imgpad>|<\|(?:im_start|im_end|extra_\d+)\|>")  # never in a pre-training sample
NOT_IN_CHAT = re.compile(r"<\|(?:endoftext|im_start|im_end|extra_\d+)\|>|<imgpad>")  # never in SFT content (§4.7)
REGION = re.compile(
    r"<ref>(?P<ref>.*?)</ref>|<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>"
    r"|<quad>(?P<quad>\(\d+,\d+\)(?:,\(\d+,\d+\)){3})</quad>",
    re.S,
)
POINT = re.compile(r"\((\d+),(\d+)\)")
REF_SPAN = re.compile(r"<ref>(.*?)</ref>", re.S)  # group 1: the referred text (the exports)
BOX_SPAN = re.compile(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>")  # groups: x1, y1, x2, y2
QUAD_SPAN = re.compile(r"<quad>((?:\(\d+,\d+\),?){4})</quad>")  # group 1: the four points
REGION_RUN = re.compile(
    r"(?:<box>\(\d+,\d+\),\(\d+,\d+\)</box>|<quad>(?:\(\d+,\d+\),?){4}</quad>)+"
)  # adjacent regions
OCR_LINE = re.compile(r"<ref>(.*?)</ref><quad>", re.S)  # the text of each OCR line
VQA_PREFIX = re.compile(r"^<img>(?P<image>.*?)</img>(?P<question>.*) Answer:$", re.S)
REF_PREFIX = re.compile(r"^<img>(?P<image>.*?)</img><ref>(?P<expression>.*)</ref>$", re.S)
CAPTION_PREFIX = re.compile(r"^<img>(?P<image>.*?)</img>Generate the caption in (?P<lang>English|Chinese):$")
PICTURE = re.compile(r"Picture (\d+): <img>(.*?)</img>\n")  # finetune JSON image references (§4.5)

PROMPTS = {  # §8.6; the Chinese prompts are not published (§2.3, [I]): ours mirror the English ones
    "caption": {"en": "Generate the caption in English:", "zh": "Generate the caption in Chinese:"},
    "grounding": {
        "en": "Generate the caption in English with grounding:",
        "zh": "Generate the caption in Chinese with grounding:",
    },
    "vqa": {"en": " Answer:", "zh": " 回答："},  # appended to the question (eval_mm/evaluate_vqa.py form)
    "grounded_caption": {"en": ("This", " is"), "zh": ("这", "是")},  # <ref>This</ref><box>..</box> is -> desc
    "ocr": {"en": "OCR with grounding:", "zh": "OCR with grounding:"},  # one prompt for SynthDoG-en and -zh
}


class FormatError(ValueError):
    """A value cannot be written in the Qwen-VL format (e.g. an image path over 256 bytes)."""


def sanitize(text: str) -> str:
    """NFC text with every special-token string removed, repeated until none is left (removal can join
    fragments like '<re<ref>f>' into a new one)."""
    text = unicodedata.normalize("NFC", text)
    while True:
        cleaned = SPECIAL_TOKEN.sub("", text)
        if cleaned == text:
            return cleaned
        text = cleaned


def normalize(value: float, dim: float) -> int:
    """A pixel coordinate on the 0..999 grid."""
    if dim <= 0:
        raise FormatError(f"image dimension must be positive, got {dim}")
    return min(999, max(0, int(value / dim * 1000)))


def denormalize(value: int, dim: float) -> float:
    """Back to pixels (the left edge of the grid cell): within dim/1000 of the original."""
    return value / 1000 * dim


def img(path: str) -> str:
    """<img>path</img>; the path must be ≤ 256 UTF-8 bytes, NFC-stable and free of special strings."""
    if not path or len(path.encode()) > MAX_IMAGE_PATH_BYTES:
        raise FormatError(f"image path must be 1..{MAX_IMAGE_PATH_BYTES} UTF-8 bytes: {path[:80]!r}")
    if "<" in path or ">" in path or unicodedata.normalize("NFC", path) != path:
        raise FormatError(f"image path must be NFC and contain no '<' or '>': {path[:80]!r}")
    return f"{IMG_START}{path}{IMG_END}"


def ref(text: str) -> str:
    """<ref>text</ref> with the text sanitized (keep a leading space: `…of<ref> bees</ref>`, §2.3)."""
    return f"{REF_START}{sanitize(text)}{REF_END}"


def box(xyxy: Sequence[float], size: tuple[float, float]) -> str:
    """<box>(x1,y1),(x2,y2)</box>: top-left then bottom-right, normalized, no spaces."""
    x1, y1, x2, y2 = xyxy
    w, h = size
    nx1, nx2 = sorted((normalize(x1, w), normalize(x2, w)))
    ny1, ny2 = sorted((normalize(y1, h), normalize(y2, h)))
    return f"{BOX_START}({nx1},{ny1}),({nx2},{ny2}){BOX_END}"


def quad(points: Sequence[tuple[float, float]], size: tuple[float, float]) -> str:
    """<quad>(x,y),(x,y),(x,y),(x,y)</quad>: corners TL, TR, BR, BL, normalized."""
    if len(points) != 4:
        raise FormatError(f"a quad has 4 corners, got {len(points)}")
    w, h = size
    return QUAD_START + ",".join(f"({normalize(x, w)},{normalize(y, h)})" for x, y in points) + QUAD_END
