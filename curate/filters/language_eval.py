"""The labelled language-ID set and its measure (issue 22): real captions from ../shared/data, each labelled by
reading it (tests/data/langid/LABELLING.md), and precision / recall / speed of a pass-or-reject rule on them.

The labels file holds rows and labels only; the captions are read from the shared data each time, never copied.
A `test` split was set aside before any rule was tuned; the defaults were chosen on `tune`.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

LABELS = ("en", "zh", "other", "mixed", "none")
KEPT = ("en", "zh")  # Qwen-VL's languages: the positives
SPLITS = ("tune", "test")


@dataclass(frozen=True)
class Caption:
    source: str  # a file under the shared data folder
    row: int  # 0-based row (line, or annotation index for COCO JSON)
    label: str
    split: str
    text: str


def _texts(path: Path) -> list[str]:
    """Captions of one shared file, by row: LAION parquet / JSONL (`TEXT`), COCO caption JSON (annotation order),
    COCO-CN text lines (`<image id>#<n>\\t<sentence>`)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["TEXT"]).column("TEXT").to_pylist()
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            return [json.loads(line)["TEXT"] for line in f]
    if path.suffix == ".json":
        return [a["caption"] for a in json.loads(path.read_text(encoding="utf-8"))["annotations"]]
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 1)[1] for line in f]


def load_labelled(labels: Path, shared_data: Path) -> list[Caption]:
    """Every labelled caption, with its text read from `shared_data`; a missing or mislabelled row raises."""
    texts: dict[str, list[str]] = {}
    out = []
    with labels.open(encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["label"] not in LABELS or r["split"] not in SPLITS:
                raise ValueError(f"{labels}: row {r} has a label outside {LABELS} or a split outside {SPLITS}")
            if r["source"] not in texts:
                texts[r["source"]] = _texts(shared_data / r["source"])
            text = texts[r["source"]][int(r["row"])]
            out.append(Caption(r["source"], int(r["row"]), r["label"], r["split"], text or ""))
    return out


@dataclass(frozen=True)
class Measured:
    precision: float  # of the captions that pass, the share truly en/zh (`mixed` counted neither way)
    recall: float  # of the true en/zh captions, the share that pass
    passed: int
    true_positive: int
    false_positive: int
    false_negative: int
    us_per_caption: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


Rule = Callable[[list[str]], list[bool]]  # captions -> pass (True) or reject, one verdict per caption


def per_caption(passes: Callable[[str], bool]) -> Rule:
    """A rule from a one-caption function."""
    return lambda texts: [passes(t) for t in texts]


def measure(rule: Rule, captions: Iterable[Caption]) -> Measured:
    """`rule` over the captions (mixed ones left out), timed per caption."""
    rows = [c for c in captions if c.label != "mixed"]
    started = time.perf_counter()
    verdicts = [bool(v) for v in rule([c.text for c in rows])]
    us = (time.perf_counter() - started) / max(1, len(rows)) * 1e6
    tp = sum(v and c.label in KEPT for v, c in zip(verdicts, rows, strict=True))
    fp = sum(v and c.label not in KEPT for v, c in zip(verdicts, rows, strict=True))
    fn = sum(not v and c.label in KEPT for v, c in zip(verdicts, rows, strict=True))
    return Measured(tp / max(1, tp + fp), tp / max(1, tp + fn), tp + fp, tp, fp, fn, us)


def filter_rule(**config) -> Rule:
    """The `language` filter (`config` over its defaults) as a rule: its own score and verdict on a batch."""
    import pandas as pd

    from curate.filters.language import Language

    f = Language(**config)
    f.preflight()
    f.setup()

    def rule(texts: list[str]) -> list[bool]:
        batch = pd.DataFrame({"caption": texts, "reject_reason": [None] * len(texts)})
        return [r is None for r in f.apply(batch)["reject_reason"]]

    return rule
