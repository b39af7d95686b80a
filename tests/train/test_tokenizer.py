"""Tokenizers of the reference model: ChatML labels exactly as finetune.py masks them (QWENVL_FORMAT.md §4.7), and
a local Hugging Face tokenizer with the special tokens as single ids."""

from __future__ import annotations

import pytest
from helpers import save_tiny_hf_tokenizer

from curate.format.tokenizer import IGNORE, SYSTEM, ByteTokenizer, HfTokenizer, make_tokenizer

TOK = ByteTokenizer()
N_Q = 4


def test_chat_labels_follow_finetune_py_token_by_token():
    convo = [
        {"from": "user", "value": "Picture 1: <img>a.jpg</img>\nWhat is it?"},
        {"from": "assistant", "value": "A cat."},
        {"from": "user", "value": "Colour?"},
        {"from": "assistant", "value": "Red."},
    ]
    enc = TOK.encode_chat(convo, N_Q)
    start, end, nl = TOK.ids["<|im_start|>"], TOK.ids["<|im_end|>"], ord("\n")
    expected_ids, expected_labels = [], []

    def turn(role: str, body: list[int], learn: bool) -> None:
        head = [start] + list(role.encode()) + [nl]
        expected_ids.extend(head + body + [end, nl])
        # §4.7: <|im_start|> learned; role word and its newline masked; content learned only for the assistant;
        # <|im_end|> and the newline after it learned
        expected_labels.extend([start] + [IGNORE] * (len(head) - 1) + (body if learn else [IGNORE] * len(body)))
        expected_labels.extend([end, nl])

    turn("system", list(SYSTEM.encode()), learn=False)
    picture = list(b"Picture 1: ") + [TOK.ids["<img>"]] + [TOK.ids["<imgpad>"]] * N_Q + [TOK.ids["</img>"]]
    turn("user", picture + list(b"\nWhat is it?"), learn=False)
    turn("assistant", list(b"A cat."), learn=True)
    turn("user", list(b"Colour?"), learn=False)
    turn("assistant", list(b"Red."), learn=True)
    assert enc.input_ids == expected_ids
    assert enc.labels == expected_labels
    assert enc.images == ["a.jpg"]
    assert enc.input_ids[enc.slots[0] - 1] == TOK.ids["<img>"]
    assert TOK.decode(enc.input_ids).startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")


def test_chat_rejects_unknown_roles():
    with pytest.raises(ValueError, match="role"):
        TOK.encode_chat([{"from": "human", "value": "hi"}], N_Q)


@pytest.fixture(scope="module")
def hf_tokenizer_dir(tmp_path_factory):
    texts = ["a red cat on a mat", "the blue square (12,34),(56,78)"] * 50
    return save_tiny_hf_tokenizer(tmp_path_factory.mktemp("tok") / "tok", texts)


def test_hugging_face_tokenizer_adds_every_special_token_as_one_id(hf_tokenizer_dir):
    tok = make_tokenizer(str(hf_tokenizer_dir))
    assert isinstance(tok, HfTokenizer) and len(set(tok.ids.values())) == len(tok.ids)
    enc = tok.encode_sample(
        "<img>x.jpg</img><ref>the blue square</ref>", "<box>(12,34),(56,78)</box><|endoftext|>", N_Q
    )
    assert enc.input_ids.count(tok.ids["<imgpad>"]) == N_Q
    assert enc.input_ids[-1] == tok.eos and enc.labels[-1] == tok.eos
    first_target = enc.input_ids.index(tok.ids["<box>"])
    assert all(label == IGNORE for label in enc.labels[:first_target])
    assert enc.labels[first_target:] == enc.input_ids[first_target:]
    assert tok.decode(enc.input_ids) == "<img></img><ref>the blue square</ref><box>(12,34),(56,78)</box><|endoftext|>"


def test_missing_tokenizer_folder_is_a_clear_config_error(tmp_path):
    with pytest.raises(ValueError, match="nor a folder holding a Hugging Face tokenizer"):
        make_tokenizer(str(tmp_path / "nope"))
