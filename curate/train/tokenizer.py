"""Tokenizers for the reference model: the offline byte-level default, or a Hugging Face tokenizer from a local
folder, both with Qwen-VL's special tokens added, and the two label layouts the model trains on.

An `<img>path</img>` span becomes `<img>` + n_queries `<imgpad>` slots + `</img>`: the model overwrites the slots
with the adapter's outputs, as Qwen-VL overwrites the 256 positions of its span (QWENVL_FORMAT.md §3.2).
Task samples learn their target only (§2.2); chat conversations learn what finetune.py's masks keep (§4.7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.tasks import qwen

SPECIALS = qwen.SPECIAL_TOKENS
PIECE = re.compile(r"(<img>.*?</img>|" + "|".join(re.escape(s) for s in SPECIALS) + ")", re.S)
IGNORE = -100
SYSTEM = "You are a helpful assistant."  # finetune.py's default system message (§4.6)
ROLES = {"user": "user", "assistant": "assistant", "system": "system"}


@dataclass
class Encoded:
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # IGNORE where no loss applies
    images: list[str] = field(default_factory=list)  # paths, in order
    slots: list[int] = field(default_factory=list)  # position of each image's first slot

    def extend(self, other: Encoded, learn: bool) -> None:
        """Append `other`; its labels are kept when `learn`, else all IGNORE."""
        offset = len(self.input_ids)
        self.input_ids += other.input_ids
        self.labels += other.labels if learn else [IGNORE] * len(other.input_ids)
        self.images += other.images
        self.slots += [offset + s for s in other.slots]


class Tokenizer:
    """Shared encoding logic; subclasses say how plain text becomes ids and what the special-token ids are."""

    ids: dict[str, int]
    vocab_size: int
    name: str

    def text_ids(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode_text(self, ids: list[int]) -> str:
        raise NotImplementedError

    @property
    def eos(self) -> int:
        return self.ids[qwen.EOS]

    @property
    def pad(self) -> int:
        return self.eos  # Qwen-VL pads with <|endoftext|> (§4.6)

    def encode(self, text: str, n_queries: int) -> Encoded:
        """Ids of a text, every token labelled with itself except image spans (never learned)."""
        out = Encoded()
        for piece in PIECE.split(text):
            if not piece:
                continue
            if piece.startswith("<img>") and piece.endswith("</img>") and piece not in self.ids:
                out.images.append(piece[5:-6])
                out.input_ids.append(self.ids["<img>"])
                out.slots.append(len(out.input_ids))
                out.input_ids += [self.ids["<imgpad>"]] * n_queries + [self.ids["</img>"]]
                out.labels += [IGNORE] * (n_queries + 2)
                continue
            ids = [self.ids[piece]] if piece in self.ids else self.text_ids(piece)
            out.input_ids += ids
            out.labels += ids
        return out

    def encode_sample(self, prefix: str, target: str, n_queries: int) -> Encoded:
        """A task sample: loss on the target's tokens, never on the prefix or on image slots (§2.2)."""
        out = Encoded()
        out.extend(self.encode(prefix, n_queries), learn=False)
        out.extend(self.encode(target, n_queries), learn=True)
        return out

    def encode_chat(self, conversation: list[dict[str, Any]], n_queries: int, system: str = SYSTEM) -> Encoded:
        """ChatML with finetune.py's labels (§4.6-4.7): every <|im_start|>, <|im_end|> and the newline after it,
        plus the assistant's content, are learned; role words, their newline, the system prompt and all user
        content (image spans included) are not."""
        out = Encoded()
        newline = self.text_ids("\n")
        turns = [("system", system)] + [(turn["from"], turn["value"]) for turn in conversation]
        for i, (role, value) in enumerate(turns):
            if role not in ROLES:
                raise ValueError(f"turn {i}: role {role!r} is not one of {', '.join(ROLES)}")
            out.extend(self.encode("<|im_start|>", n_queries), learn=True)
            out.extend(self.encode(ROLES[role], n_queries), learn=False)
            out.extend(Encoded(newline, list(newline)), learn=False)
            out.extend(self.encode(value, n_queries), learn=role == "assistant")
            out.extend(self.encode("<|im_end|>", n_queries), learn=True)
            out.extend(Encoded(newline, list(newline)), learn=True)
        return out

    def decode(self, ids: list[int]) -> str:
        """Text of ids; image slots are dropped, so a span reads `<img></img>`."""
        names = {i: t for t, i in self.ids.items()}
        out, run = [], []
        for i in ids:
            if i in names:
                out.append(self.decode_text(run))
                run = []
                if names[i] != "<imgpad>":
                    out.append(names[i])
            else:
                run.append(i)
        out.append(self.decode_text(run))
        return "".join(out)


class ByteTokenizer(Tokenizer):
    """Offline default: bytes 0-255, then the special tokens."""

    name = "bytes"

    def __init__(self) -> None:
        self.ids = {token: 256 + i for i, token in enumerate(SPECIALS)}
        self.vocab_size = 256 + len(SPECIALS)

    def text_ids(self, text: str) -> list[int]:
        return list(text.encode())

    def decode_text(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode(errors="replace")


class HfTokenizer(Tokenizer):
    """A Hugging Face tokenizer from a local folder with Qwen-VL's special tokens added as single tokens."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_dir():
            raise ConfigError(f"model.tokenizer {path!r} is not a folder holding a Hugging Face tokenizer")
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tok.add_special_tokens({"additional_special_tokens": list(SPECIALS)})
        self.ids = {t: self._tok.convert_tokens_to_ids(t) for t in SPECIALS}
        self.vocab_size = len(self._tok)
        self.name = f"hf:{Path(path).name}"

    def text_ids(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def decode_text(self, ids: list[int]) -> str:
        return self._tok.decode(ids) if ids else ""


def make_tokenizer(path: str | None) -> Tokenizer:
    return HfTokenizer(path) if path else ByteTokenizer()
