"""The one task-builder abstraction: a source record in, Examples (or Skips that say why) out."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

from curate.core.schema import SCHEMA_VERSION

KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # WebDataset splits keys at the first dot; no dots or slashes


@dataclass(frozen=True, kw_only=True)
class Example:
    """One stage-2 training sample: prefix (no loss) + target (loss, ends with EOS)."""

    task: str
    source: str
    key: str
    images: tuple[str, ...]  # paths inside <img>…</img>, in order
    prefix: str
    target: str

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self), "images": list(self.images)}


@dataclass(frozen=True)
class Skip:
    """A record (or part of one) a builder could not use, and why; counted, never raised."""

    reason: str


Built = Iterator[Example | Skip]


class TaskBuilder(Protocol):
    name: ClassVar[str]

    def __call__(self, record: Mapping[str, Any]) -> Built: ...


def make_key(source: str, record_id: Any, index: int | None = None) -> str:
    """Stable sample key: `{source}-{record id}[-{index}]`, only [A-Za-z0-9_-]."""
    parts = [source, str(record_id)] + ([] if index is None else [str(index)])
    return "-".join(KEY_UNSAFE.sub("_", p) for p in parts)


def language_of(text: str) -> str:
    """'zh' when Han characters dominate the letters, else 'en' (picks the prompt variant)."""
    han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    letters = sum(1 for c in text if c.isalpha())
    return "zh" if letters and han / letters >= 0.5 else "en"


def image_problem(record: Mapping[str, Any]) -> Skip | None:
    """A Skip when the record's image path cannot go inside <img>…</img> (over 256 bytes, '<', not NFC)."""
    from curate.format import qwen

    try:
        qwen.img(record["image"])
    except qwen.FormatError:
        return Skip("image_path_invalid")
    return None
