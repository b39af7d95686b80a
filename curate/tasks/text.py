"""Pure-text autoregression (QWENVL_FORMAT.md §2.3 last row): no prefix, `{text}<eos>`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from curate.format import qwen
from curate.tasks.base import Built, Example, Skip, make_key

SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
# ~2048 tokens hold ~8k English or ~3k Chinese characters; 2000 fits either (paper §2.2 packs to 2048).
MAX_CHARS = 2000
MIN_CHARS = 50  # shorter pieces are skipped (too_short)


def chunks(text: str, max_chars: int) -> Iterator[str]:
    """Whole sentences packed into pieces of at most max_chars (a longer sentence is cut hard)."""
    piece = ""
    for sentence in (s for s in SENTENCE_END.split(text) if s):
        while len(sentence) > max_chars:
            if piece:
                yield piece.strip()
                piece = ""
            yield sentence[:max_chars].strip()
            sentence = sentence[max_chars:]
        joiner = " " if piece and not re.match(r"[\u4e00-\u9fff]", sentence) else ""
        if len(piece) + len(joiner) + len(sentence) > max_chars:
            yield piece.strip()
            piece, joiner = "", ""
        piece += joiner + sentence
    if piece.strip():
        yield piece.strip()


@dataclass(frozen=True, kw_only=True)
class Text:
    """(no prefix) → `{text}<eos>`, long documents cut at sentence ends into max_chars pieces."""

    name: ClassVar[str] = "text"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        text = " ".join(qwen.sanitize(record["text"] or "").split())
        produced = 0
        for i, piece in enumerate(chunks(text, MAX_CHARS)):
            if len(piece) < MIN_CHARS:
                yield Skip("too_short")
                continue
            produced += 1
            yield Example(
                task=self.name,
                source=record["source"],
                key=make_key(record["source"], record["id"], i),
                images=(),
                prefix="",
                target=piece + qwen.EOS,
            )
        if not produced and not text:
            yield Skip("empty_text")
