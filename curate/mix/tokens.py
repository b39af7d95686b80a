"""Token counting for packing: a Hugging Face tokenizer from a local path, or the offline byte-level default.

Every `<img>…</img>` span counts 258 tokens whatever the path: Qwen-VL pads it to `<img>` + 256 + `</img>`
(QWENVL_FORMAT.md §2.2, §3.2).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from curate.errors import ConfigError
from curate.tasks import qwen

IMAGE_TOKENS = 258
IMAGE_SPAN = re.compile(r"<img>.*?</img>", re.S)
SPECIAL_TOKENS = qwen.SPECIAL_TOKENS
SPECIAL = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


class TokenCounter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


class ByteTokens:
    """Offline default: one token per UTF-8 byte, one per special token (an upper bound for any BPE)."""

    name = "bytes"

    def count(self, text: str) -> int:
        images = len(IMAGE_SPAN.findall(text))
        rest = IMAGE_SPAN.sub("", text)
        specials = len(SPECIAL.findall(rest))
        return images * IMAGE_TOKENS + specials + len(SPECIAL.sub("", rest).encode())


class HfTokens:
    """A Hugging Face tokenizer loaded from a local folder, with Qwen-VL's special tokens added."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_dir():
            raise ConfigError(f"tokenizer.path {path} is not a folder holding a Hugging Face tokenizer")
        try:
            from transformers import AutoTokenizer
        except ImportError as err:
            raise ConfigError("tokenizer.path needs the transformers package (pip install transformers)") from err
        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
        self.name = f"hf:{Path(path).name}"

    def count(self, text: str) -> int:
        images = len(IMAGE_SPAN.findall(text))
        ids = self._tok(IMAGE_SPAN.sub("", text), add_special_tokens=False)["input_ids"]
        return images * IMAGE_TOKENS + len(ids)


def make_counter(path: str | None) -> TokenCounter:
    return HfTokens(path) if path else ByteTokens()
