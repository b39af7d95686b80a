"""VQA (QWENVL_FORMAT.md §2.3 rows 2-3): `{question} Answer:` + ` {answer}` (eval_mm/evaluate_vqa.py form)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from curate.format import qwen
from curate.tasks.base import Built, Example, Skip, image_problem, language_of, make_key


def most_frequent(answers: list[str]) -> str | None:
    """The answer given most often (VQAv2-style lists keep the max-confidence answer, paper App. A.2); ties go
    to the earliest."""
    cleaned = [" ".join(qwen.sanitize(a or "").split()) for a in answers]
    counts = Counter(a for a in cleaned if a)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in cleaned if counts.get(a) == best)


@dataclass(frozen=True, kw_only=True)
class Vqa:
    """<img>p</img>{question} Answer: → ` {answer}<eos>`."""

    name: ClassVar[str] = "vqa"

    def __call__(self, record: Mapping[str, Any]) -> Built:
        if problem := image_problem(record):
            yield problem
            return
        question = " ".join(qwen.sanitize(record["question"] or "").split())
        answer = most_frequent(list(record["answers"]))
        if not question or answer is None:
            yield Skip("no_question" if not question else "no_answer")
            return
        suffix = qwen.PROMPTS["vqa"][language_of(question)]
        yield Example(
            task=self.name,
            source=record["source"],
            key=make_key(record["source"], record["id"]),
            images=(record["image"],),
            prefix=qwen.img(record["image"]) + question + suffix,
            target=f" {answer}{qwen.EOS}",
        )
