"""The training data path: both shard layouts read, batches built exactly (segments, positions, image slots,
labels), bad samples counted not fatal, and the stream resumes mid-way with the identical batch sequence."""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from PIL import Image

from curate.format.tokenizer import IGNORE, ByteTokenizer
from curate.train.data import Collator, ShardStream, find_shards, make_loader, read_shards, split_holdout
from curate.train.pixels import ImageInput

TOK = ByteTokenizer()
N_Q = 4


def jpeg(colour=(200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(out, format="JPEG")
    return out.getvalue()


def test_both_shard_layouts_read_as_items(shapes_build, shapes_mix):
    built = next(read_shards(find_shards([str(shapes_build / "ref_grounding" / "shards")])))
    assert built["task"] == "ref_grounding" and len(built["samples"]) == 1
    assert built["samples"][0]["prefix"].startswith("<img>shapes/") and len(built["samples"][0]["image_bytes"]) == 1
    packed = next(read_shards(find_shards([str(shapes_mix / "shards")])))
    assert len(packed["samples"]) > 1 and all(len(s["image_bytes"]) == 1 for s in packed["samples"])
    assert all(s["target"].endswith("<|endoftext|>") for s in packed["samples"])


def test_holdout_takes_the_last_shards_and_refuses_to_take_all():
    assert split_holdout(["a", "b", "c"], [], 1) == (["a", "b"], ["c"])
    assert split_holdout(["a", "b", "c"], ["x"], 1) == (["a", "b", "c"], ["x"])
    with pytest.raises(ValueError, match="cannot spare"):
        split_holdout(["a"], [], 1)
    assert split_holdout(["out/a.tar", "out/b.tar"], ["./out/b.tar"], 1)[0] == [
        "out/a.tar"
    ]  # same file, other spelling


def test_packed_batch_restarts_positions_and_puts_images_on_their_slots():
    collate = Collator(TOK, ImageInput("qwen_vl", N_Q, 16), seq_len=512)
    samples = [
        {"prefix": "<img>a.jpg</img><ref>the red square</ref>", "target": "<box>(1,2),(3,4)</box><|endoftext|>"},
        {"prefix": "<img>b.jpg</img>Generate the caption in English:", "target": " a cat<|endoftext|>"},
    ]
    for s in samples:
        s["image_bytes"] = [jpeg()]
    batch = collate([{"key": "k0", "task": "mixed", "samples": samples}])
    encs = [TOK.encode_sample(s["prefix"], s["target"], N_Q) for s in samples]
    n0, n1 = (len(e.input_ids) for e in encs)
    assert batch["input_ids"][0].tolist() == encs[0].input_ids + encs[1].input_ids
    assert batch["labels"][0].tolist() == encs[0].labels + encs[1].labels
    assert batch["segments"][0].tolist() == [0] * n0 + [1] * n1
    assert batch["positions"][0].tolist() == list(range(n0)) + list(range(n1))
    assert batch["image_slots"].tolist() == [[0, 1], [0, n0 + 1]]
    for _, start in batch["image_slots"].tolist():
        assert batch["input_ids"][0, start - 1] == TOK.ids["<img>"]
        assert set(batch["input_ids"][0, start : start + N_Q].tolist()) == {TOK.ids["<imgpad>"]}
        assert set(batch["labels"][0, start - 1 : start + N_Q + 1].tolist()) == {IGNORE}
    assert batch["images"].shape == (2, 3, 16, 16)
    assert batch["keys"] == ["k0"] and batch["skipped"] == {}


def test_bad_samples_are_counted_and_left_out_never_cut():
    collate = Collator(TOK, ImageInput("qwen_vl", N_Q, 16), seq_len=64)
    good = {"prefix": "<img>a.jpg</img>x", "target": " y<|endoftext|>", "image_bytes": [jpeg()]}
    items = [
        {"key": "a", "task": "caption", "samples": [good, {**good, "image_bytes": []}]},
        {"key": "b", "task": "caption", "samples": [{**good, "image_bytes": [b"not an image"]}]},
        {"key": "c", "task": "text", "samples": [{"prefix": "", "target": "z" * 100, "image_bytes": []}]},
    ]
    batch = collate(items)
    assert batch["skipped"] == {"image_missing": 1, "image_decode_error": 1, "too_long": 1}
    assert batch["keys"] == ["a"] and batch["images"].shape[0] == 1
    empty = collate(items[1:])
    assert empty["input_ids"].shape[0] == 0 and empty["images"].shape[0] == 0


def _collate():
    return Collator(TOK, ImageInput("qwen_vl", N_Q, 16), 2048)


def _stream(shards, start=0):
    stream = ShardStream(shards, _collate(), shuffle_buffer=8, batch_size=2, seed=3)
    stream.start_batches = start
    return stream


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_resumes_mid_way_with_the_identical_batch_sequence(shapes_build, workers):
    shards = find_shards([str(shapes_build / "ref_grounding" / "shards")])
    keys = [b["keys"] for b in itertools.islice(make_loader(_stream(shards), workers, False), 40)]
    flat = [k for batch in keys for k in batch]
    assert len(set(flat[:60])) > 50  # the first epoch covers the shards (shuffled, without repeats)
    resumed = [b["keys"] for b in itertools.islice(make_loader(_stream(shards, start=13), workers, False), 27)]
    assert resumed == keys[13:]  # crosses into the second epoch too (60 samples = 30 batches)


def test_no_shuffle_buffer_keeps_the_shard_order(shapes_build):
    shards = find_shards([str(shapes_build / "ref_grounding" / "shards")])
    stream = ShardStream(shards, _collate(), shuffle_buffer=0, batch_size=10, seed=0)
    first = next(iter(stream))["keys"]
    assert first == sorted(first) and len(first) == 10  # one shard's samples, in order


def test_different_seeds_shuffle_differently(shapes_build):
    shards = find_shards([str(shapes_build / "ref_grounding" / "shards")])
    a = [b["keys"] for b in itertools.islice(iter(_stream(shards)), 10)]
    other = ShardStream(shards, _collate(), shuffle_buffer=8, batch_size=2, seed=4)
    assert a != [b["keys"] for b in itertools.islice(iter(other), 10)]
    assert torch.is_tensor(next(iter(other))["input_ids"])
