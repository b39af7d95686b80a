"""Caption text rules from Qwen-VL's cleaning list (paper App. A.1, rules 5-8, and the special-tag rule).

Cleaning (HTML, irregular patterns) rewrites `caption`; `caption_raw` keeps the input. Rejection reasons are
`caption_text:<rule>`, checked in the order of REASONS.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import regex

from curate.core.errors import ConfigError
from curate.filters.base import Batch, Filter
from curate.format import qwen

# Qwen-VL's own special-token strings (QWENVL_FORMAT.md §8.5) and CC12M-style `<PERSON>` placeholders.
SPECIAL_TAG = regex.compile(qwen.SPECIAL_TOKEN.pattern + r"|<[A-Z][A-Z_]{2,}>")
HTML_TAG = regex.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<!--.*?-->", regex.S)
# Irregular patterns: machine residue that says nothing about the image.
IRREGULAR = [
    regex.compile(r"(?:https?://|www\.)\S+", regex.I),  # URLs
    regex.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b"),  # e-mail addresses
    regex.compile(r"\b[\w-]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic)\b", regex.I),  # file names
    regex.compile(r"\b(?:IMG|DSC|DSCN|DCIM|PXL|GOPR|MVIMG)[_-]?\d+\w*\b", regex.I),  # camera file ids
    regex.compile(r"\b[0-9a-f]{16,}\b", regex.I),  # hashes
    regex.compile(r"\b\d{7,}\b"),  # long numeric ids
]
REPEATED_PUNCT = regex.compile(r"([^\w\s])\1{3,}")  # "!!!!!", "-----" -> one
EMPTY_BRACKETS = regex.compile(r"[(\[{]\s*[)\]}]")
SPACES = regex.compile(r"\s+")
WORD = regex.compile(r"\p{Han}|[\p{L}\p{N}]+")  # each Han character counts as one word
LETTER = regex.compile(r"\p{L}")
# Pictographic emoji: any code point in the supplementary symbol planes, the variation selector that asks for
# emoji presentation, and the misc-symbol / dingbat blocks. Plain ©, ® and ™ are text symbols and pass.
EMOJI = regex.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\U000E0020-\U000E007F]")


def clean_caption(text: str) -> str:
    """Unescape and strip HTML, remove irregular patterns, collapse whitespace."""
    for _ in range(2):  # doubly escaped entities (&amp;quot;) are common in alt-text
        text = html.unescape(text)
    text = HTML_TAG.sub(" ", text)
    for pattern in IRREGULAR:
        text = pattern.sub(" ", text)
    text = REPEATED_PUNCT.sub(r"\1", text)
    text = EMPTY_BRACKETS.sub(" ", text)
    return SPACES.sub(" ", text).strip()


@dataclass(kw_only=True)
class CaptionText(Filter):
    """Keeps captions without emoji or special tags, mostly letters, and within the length limits."""

    name: ClassVar[str] = "caption_text"
    reasons: ClassVar[tuple[str, ...]] = (
        "caption_text:missing",
        "caption_text:special_tag",
        "caption_text:emoji",
        "caption_text:irregular",
        "caption_text:too_short",
        "caption_text:too_long",
    )
    # Our own thresholds: Qwen's are unpublished (QwenLM/Qwen-VL#34).
    min_chars: int = 3
    max_chars: int = 512
    min_words: int = 3
    max_words: int = 96
    min_alpha_ratio: float = 0.5  # below this the caption is mostly digits/punctuation: an irregular pattern

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 <= self.min_chars <= self.max_chars and 0 <= self.min_words <= self.max_words):
            raise ConfigError("caption_text: need 0 <= min_chars <= max_chars and 0 <= min_words <= max_words")
        if not 0 <= self.min_alpha_ratio <= 1:
            raise ConfigError("caption_text.min_alpha_ratio must be within [0, 1]")

    def score(self, rows: Batch) -> pd.DataFrame:
        raw = rows["caption_raw"].tolist()
        cleaned = [clean_caption(t) if isinstance(t, str) else None for t in raw]
        chars = [len(t) if t is not None else 0 for t in cleaned]
        words = [len(WORD.findall(t)) if t else 0 for t in cleaned]
        alpha = [_alpha_ratio(t) for t in cleaned]
        return pd.DataFrame(
            {"caption": cleaned, "caption_chars": chars, "caption_words": words, "caption_alpha_ratio": alpha},
            index=rows.index,
        )

    def verdict(self, rows: Batch) -> pd.Series:
        reasons = [
            self._reason(*values)
            for values in zip(
                rows["caption_raw"],
                rows["caption"],
                rows["caption_chars"],
                rows["caption_words"],
                rows["caption_alpha_ratio"],
                strict=True,
            )
        ]
        return pd.Series(reasons, index=rows.index, dtype=object)

    def _reason(  # noqa: PLR0911 - one return per rule, in REASONS order
        self, raw: str | None, text: str | None, chars: int, words: int, alpha: float
    ) -> str | None:
        if not isinstance(raw, str) or not raw.strip():
            return "caption_text:missing"
        if SPECIAL_TAG.search(html.unescape(html.unescape(raw))):
            return "caption_text:special_tag"
        if EMOJI.search(raw):
            return "caption_text:emoji"
        if not text or alpha < self.min_alpha_ratio:
            return "caption_text:irregular"
        if chars < self.min_chars or words < self.min_words:
            return "caption_text:too_short"
        if chars > self.max_chars or words > self.max_words:
            return "caption_text:too_long"
        return None


def _alpha_ratio(text: str | None) -> float:
    if not text:
        return 0.0
    visible = len(text) - text.count(" ")
    return len(LETTER.findall(text)) / visible if visible else 0.0
