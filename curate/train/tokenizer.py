"""The offline default tokenizer for the reference model: one id per UTF-8 byte plus Qwen-VL's special tokens.

An `<img>path</img>` span becomes `<img>` + n_queries `<imgpad>` slots + `</img>`: the model overwrites the slots
with the adapter's outputs, as Qwen-VL overwrites the 256 positions of its span (QWENVL_FORMAT.md §3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.tasks import qwen

SPECIALS = qwen.SPECIAL_TOKENS
PIECE = re.compile(r"(<img>.*?</img>|" + "|".join(re.escape(s) for s in SPECIALS) + ")", re.S)
IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on the prefix, image slots and padding: loss on target tokens only
    images: list[str]  # paths, in order
    slots: list[int]  # position of each image's first slot


class ByteTokenizer:
    """Bytes 0-255, then the special tokens."""

    def __init__(self) -> None:
        self.ids = {token: 256 + i for i, token in enumerate(SPECIALS)}
        self.names = {i: token for token, i in self.ids.items()}
        self.vocab_size = 256 + len(SPECIALS)
        self.eos = self.ids["<|endoftext|>"]
        self.pad = self.eos  # Qwen-VL pads with <|endoftext|> (§4.6)

    def encode(self, text: str, n_queries: int) -> tuple[list[int], list[str], list[int]]:
        """(ids, image paths, first-slot positions) of a text."""
        ids: list[int] = []
        images, slots = [], []
        for piece in PIECE.split(text):
            if not piece:
                continue
            if piece.startswith("<img>") and piece.endswith("</img>") and piece not in self.ids:
                images.append(piece[5:-6])
                ids.append(self.ids["<img>"])
                slots.append(len(ids))
                ids += [self.ids["<imgpad>"]] * n_queries + [self.ids["</img>"]]
            elif piece in self.ids:
                ids.append(self.ids[piece])
            else:
                ids += list(piece.encode())
        return ids, images, slots

    def encode_sample(self, prefix: str, target: str, n_queries: int) -> Encoded:
        """A task sample: loss on the target's tokens, never on the prefix or on image slots."""
        prefix_ids, images, slots = self.encode(prefix, n_queries)
        target_ids, target_images, target_slots = self.encode(target, n_queries)
        image_tokens = {self.ids["<img>"], self.ids["<imgpad>"], self.ids["</img>"]}
        labels = [IGNORE] * len(prefix_ids) + [IGNORE if i in image_tokens else i for i in target_ids]
        return Encoded(
            prefix_ids + target_ids,
            labels,
            images + target_images,
            slots + [len(prefix_ids) + s for s in target_slots],
        )

    def decode(self, ids: list[int]) -> str:
        out, raw = [], bytearray()
        for i in ids:
            if i < 256:
                raw.append(i)
                continue
            out.append(raw.decode(errors="replace"))
            raw = bytearray()
            if self.names.get(i) != "<imgpad>":
                out.append(self.names.get(i, ""))
        out.append(raw.decode(errors="replace"))
        return "".join(out)
