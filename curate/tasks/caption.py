"""Captioning (QWENVL_FORMAT.md §2.3 row 1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from curate.format import qwen
from curate.tasks.base import Built, Example, Skip, image_problem, language_of, make_key


@dataclass(frozen=True, kw_only=True)
class Caption:
    """<img>p</img>Generate the caption in English: → ` {caption}<eos>` (zh captions get the zh prompt)."""

    name: ClassVar[str] = "caption"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        if problem := image_problem(record):
            yield problem
            return
        for i, text in enumerate(record["captions"]):
            caption = " ".join(qwen.sanitize(text or "").split())
            if not caption:
                yield Skip("empty_caption")
                continue
            prompt = qwen.PROMPTS["caption"][language_of(caption)]
            yield Example(
                task=self.name,
                source=record["source"],
                key=make_key(record["source"], record["id"], i),
                images=(record["image"],),
                prefix=qwen.img(record["image"]) + prompt,
                target=f" {caption}{qwen.EOS}",
            )
