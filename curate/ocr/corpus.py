"""Text for synthetic documents: a character stream from one-document-per-line corpus files (SynthDoG reads
its Wikipedia dump the same way, §6.2)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np

from curate.core.errors import ConfigError


class Corpus:
    """All documents of one language joined into a single string; slices start at random offsets."""

    def __init__(self, patterns: tuple[str, ...], language: str) -> None:
        files = sorted(Path(p) for pattern in patterns for p in glob.glob(pattern))
        if not files:
            raise ConfigError(f"no {language} corpus file matches {', '.join(patterns) or '(none given)'}")
        text = " ".join(f.read_text(encoding="utf-8") for f in files)
        self.text = re.sub(r"\s+", " ", text)
        self.language = language

    def slice(self, rng: np.random.Generator, length: int, allowed: frozenset[int]) -> str:
        """About `length` characters from a random offset, keeping only characters the font can draw."""
        start = int(rng.integers(0, max(1, len(self.text) - length * 3)))
        if self.language != "zh":  # begin at a word boundary, not mid-word
            start = self.text.find(" ", start) + 1
        piece = self.text[start : start + length * 3]
        return "".join(c for c in piece if ord(c) in allowed or c == " ")[: length * 2]
