"""The English vocabulary the `language` filter checks Latin-script captions against (issue 22).

lid.176 reads short web titles ("Viking hat", "Mini Crop Top", "Bananas Foster Parfaits") as German, French or
Cebuano. A word list does not: a caption whose words are mostly common English words is English, whatever
their order. The list is derived from wordfreq's frequency tables (a PyPI package that ships them; its data is
CC BY-SA 4.0, so the derived list is built on the user's machine, never shipped):

- a word is English when it occurs at least once per million English words (Zipf >= ZIPF_MIN), and
- is not ten times (MARGIN Zipf) more frequent in one of LATIN_LANGUAGES, so "und", "der", "la", "foto",
  "bianco" or "grijs" do not count as English however often English text borrows them.

Both numbers were chosen on the `tune` rows of tests/data/langid/labels.tsv (README "Language ID").

Building the list reads 27 frequency tables (about 2 s and 0.6 GB at its peak), so it happens once per machine
and wordfreq version, in a child process (`preflight`), and is cached as a text file that every worker loads in
milliseconds.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import regex

log = logging.getLogger(__name__)
ZIPF_MIN = 3.0  # at least one occurrence per million words of English
MARGIN = 1.0  # Zipf units: a word ten times more frequent in another Latin-script language is that language's
# The Latin-script languages wordfreq covers (its `best` lists), English aside.
LATIN_LANGUAGES = (
    "ca", "cs", "da", "de", "es", "fi", "fil", "fr", "hu", "id", "is", "it", "lt", "lv", "ms", "nb", "nl", "pl",
    "pt", "ro", "sh", "sk", "sl", "sv", "tr", "vi",
)  # fmt: skip
# A word: letters that are not lowercase (capitals, or scripts without case) then lowercase letters; so letter
# runs split where a lowercase letter meets a capital ("CuteSpiderman" -> "Cute", "Spiderman").
WORD = regex.compile(r"[^\P{L}\p{Ll}]+\p{Ll}*|\p{Ll}+")


def cache_dir() -> Path:
    """Where derived word lists are kept: $CURATE_CACHE_DIR, else $XDG_CACHE_HOME/curate, else ~/.cache/curate."""
    if os.environ.get("CURATE_CACHE_DIR"):
        return Path(os.environ["CURATE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "curate"


def list_path() -> Path:
    """The cached list for the installed wordfreq version and these two numbers."""
    from importlib.metadata import version

    return cache_dir() / f"english_words-wordfreq{version('wordfreq')}-z{ZIPF_MIN:g}-m{MARGIN:g}.txt"


def derive() -> list[str]:
    """English words by the rule in the module docstring, sorted."""
    import wordfreq

    floor = 10 ** (ZIPF_MIN - 9)  # Zipf = log10(frequency per billion words)
    english = {w: p for w, p in wordfreq.get_frequency_dict("en", "best").items() if p >= floor}
    best_other = dict.fromkeys(english, 0.0)
    for lang in LATIN_LANGUAGES:
        table = wordfreq.get_frequency_dict(lang, "best")
        for word in english:
            p = table.get(word, 0.0)
            if p > best_other[word]:
                best_other[word] = p
    ratio = 10**MARGIN
    return sorted(w for w, p in english.items() if p * ratio >= best_other[w])


def ensure_list() -> Path:
    """The cached list, derived first in a child process when missing (the tables stay out of this process)."""
    path = list_path()
    if not path.is_file():
        log.info("deriving the English word list from wordfreq into %s (once per machine)", path)
        subprocess.run([sys.executable, "-m", __name__, str(path)], check=True)
    return path


@cache
def english_words() -> frozenset[str]:
    """The list as a set (casefolded words); derived in this process if no cache exists (a worker on another
    node than the driver)."""
    path = list_path()
    if not path.is_file():
        _write(path)
    return frozenset(path.read_text(encoding="utf-8").split())


def tokens(text: str) -> list[str]:
    """Word tokens (WORD), casefolded. Digits, marks and punctuation are not words."""
    return [t.casefold() for t in WORD.findall(text)]


def english_share(text: str, words: frozenset[str]) -> float:
    """The share of `text`'s word tokens that are English words (0 when it has none)."""
    found = WORD.findall(text)
    return sum(t.casefold() in words for t in found) / len(found) if found else 0.0


def _write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(derive()) + "\n"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two workers may derive it at once
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


if __name__ == "__main__":
    _write(Path(sys.argv[1]) if len(sys.argv) > 1 else list_path())
