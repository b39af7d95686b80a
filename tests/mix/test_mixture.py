"""Stage-2 mixtures: shares, packing limits and efficiency, determinism, the SFT rules, standard readers."""

from __future__ import annotations

import glob
import json

import pyarrow.parquet as pq
import pytest
from helpers import REPO

from curate.commands.build.config import load_build
from curate.commands.build.run import run_build
from curate.commands.mix.config import MixConfig
from curate.commands.mix.run import run_mix
from curate.core.config import build_dataclass
from curate.format.tokenizer import make_tokenizer
from curate.mixture.pack import pack
from curate.mixture.sft import check_conversation

WEIGHTS = {
    "caption": 19.7,
    "vqa": 3.6,
    "grounding": 3.5,
    "ref_grounding": 8.7,
    "grounded_caption": 8.7,
    "ocr": 24.8,
    "text": 7.8,
}


@pytest.fixture(scope="module")
def task_dirs(shared_data, tmp_path_factory):
    """All seven tasks: the shared-data build plus 60 synthetic OCR documents."""
    root = tmp_path_factory.mktemp("inputs")
    text = (REPO / "pipelines" / "build_shared.yaml").read_text().replace("../shared/data", str(shared_data))
    (root / "tasks.yaml").write_text(text)
    run_build(load_build(root / "tasks.yaml", [f"output.dir={root / 'tasks'}"]))
    ocr = (REPO / "pipelines" / "build_synthdog.yaml").read_text().replace("../shared/data", str(shared_data))
    (root / "ocr.yaml").write_text(ocr)
    run_build(load_build(root / "ocr.yaml", ["sources.synthdog.count=60", f"output.dir={root / 'ocr'}"]))
    return [str(root / "tasks"), str(root / "ocr")]


def mix(task_dirs, out, **overrides):
    raw = {"name": "m", "inputs": task_dirs, "budget": 20000, "output": {"dir": str(out), "samples_per_shard": 500}}
    raw.update(overrides)
    cfg = build_dataclass(MixConfig, raw, "test")
    return cfg, run_mix(cfg)


@pytest.fixture(scope="module")
def mixed(task_dirs, tmp_path_factory):
    return mix(task_dirs, tmp_path_factory.mktemp("mix") / "a")


def test_realized_shares_are_within_2_points_of_the_weights(mixed):
    _, stats = mixed
    assert set(stats["tasks"]) == set(WEIGHTS) and not stats["missing_tasks"]
    total = sum(r["samples"] for r in stats["tasks"].values())
    assert total == 20000
    for task, weight in WEIGHTS.items():
        assert abs(stats["tasks"][task]["samples"] / total - weight / sum(WEIGHTS.values())) <= 0.02, task


def test_no_sequence_exceeds_the_limit_and_packing_is_efficient(mixed):
    cfg, stats = mixed
    counter = make_tokenizer(cfg.tokenizer)
    table = pq.read_table(cfg.out_dir / "parquet").to_pylist()
    assert sum(len(r["sample_keys"]) for r in table) == 20000
    for row in table:
        lengths = [counter.count_sample(p, t) for p, t in zip(row["prefixes"], row["targets"], strict=True)]
        assert sum(lengths) == row["tokens"] <= cfg.seq_len
        assert [b[1] for b in row["boundaries"]] == lengths
        assert [b[0] for b in row["boundaries"]] == [sum(lengths[:i]) for i in range(len(lengths))]
        assert len(set(s.split("-")[0] for s in row["sample_keys"])) >= 1 and row["task"]
    assert stats["packing_efficiency"] >= 0.90


def test_same_seed_same_bytes_other_seed_other_order(mixed, task_dirs, tmp_path):
    cfg, _ = mixed
    again, _ = mix(task_dirs, tmp_path / "b")
    first = sorted(cfg.out_dir.glob("shards/*.tar"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in sorted(again.out_dir.glob("shards/*.tar"))]
    other, _ = mix(task_dirs, tmp_path / "c", seed=1)
    keys = pq.read_table(cfg.out_dir / "parquet", columns=["sample_keys"]).column(0).to_pylist()
    other_keys = pq.read_table(other.out_dir / "parquet", columns=["sample_keys"]).column(0).to_pylist()
    assert keys != other_keys


def test_output_loads_with_datasets_and_webdataset(mixed):
    import datasets
    import webdataset as wds

    cfg, _ = mixed
    ds = datasets.load_dataset(
        "parquet", data_files=sorted(glob.glob(str(cfg.out_dir / "parquet" / "*.parquet"))), split="train"
    )
    assert len(ds) == len(pq.read_table(cfg.out_dir / "parquet", columns=["key"]))
    assert {"key", "task", "tokens", "boundaries", "prefixes", "targets"} <= set(ds.column_names)
    samples = list(wds.WebDataset(sorted(str(p) for p in cfg.out_dir.glob("shards/*.tar")), shardshuffle=False))
    assert len(samples) == len(ds)
    with_images = next(s for s in samples if "0.jpg" in s)
    assert json.loads(with_images["json"])["images"][0]


def test_sft_export_follows_the_finetune_rules(mixed):
    cfg, stats = mixed
    items = json.loads((cfg.out_dir / "sft.json").read_text())
    assert len(items) == stats["sft_conversations"] == 200
    assert all(check_conversation(item) == [] for item in items)
    assert any(len(item["conversations"]) >= 6 for item in items)  # several questions about one image
    assert any("Picture 2: <img>" in t["value"] for item in items for t in item["conversations"])  # two pictures


@pytest.mark.parametrize(
    ("conversations", "error"),
    [
        ([{"from": "assistant", "value": "hi"}], "from must be user"),
        ([{"from": "user", "value": "a"}, {"from": "human", "value": "b"}], "from must be assistant"),
        ([{"from": "user", "value": "Picture 2: <img>a.jpg</img>\nq"}], "expected Picture 1"),
        ([{"from": "user", "value": "<img>a.jpg</img>q"}], "needs 'Picture N: '"),
        ([{"from": "user", "value": f"Picture 1: <img>{'x' * 300}</img>\nq"}], "over 256 bytes"),
        ([{"from": "user", "value": "q"}, {"from": "assistant", "value": "a<|endoftext|>"}], "literal special token"),
        (
            [
                {"from": "user", "value": "Picture 1: <img>a</img>\nq"},
                {"from": "assistant", "value": "x"},
                {"from": "user", "value": "Picture 1: <img>b</img>\nq"},
            ],
            "expected Picture 2",
        ),
    ],
)
def test_sft_rules_catch_each_violation(conversations, error):
    errors = check_conversation({"id": "identity_1", "conversations": conversations})
    assert any(error in e for e in errors), errors


def test_packing_is_best_fit_and_never_overflows():
    lengths = [1500, 600, 500, 400, 300, 2100, 1000, 1000, 48]
    sequences, too_long = pack(lengths, 2048)
    assert too_long == [5]
    assert all(s.tokens <= 2048 for s in sequences)
    assert sorted(i for s in sequences for i in s.items) == [0, 1, 2, 3, 4, 6, 7, 8]
    assert len(sequences) == 3


def test_local_hugging_face_tokenizer_counts_images_as_258(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["a cat on a mat", "a dog in a fog"] * 50, trainers.BpeTrainer(special_tokens=["[UNK]"]))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    counter = make_tokenizer(str(tmp_path / "tok"))
    plain = counter.count("a cat on a mat")
    assert plain > 0
    assert counter.count("<img>any/path.jpg</img>a cat on a mat") == plain + 258
    assert counter.count("<ref>a cat</ref><|endoftext|>") == counter.count("a cat") + 3


@pytest.fixture(scope="module")
def tiled(task_dirs, tmp_path_factory):
    """The same inputs under DeepSeek-VL2's dynamic tiling (issue 18)."""
    return mix(task_dirs, tmp_path_factory.mktemp("mix") / "tiled", budget=3000, image_plan="deepseek_vl2")


def test_tiled_mixture_counts_every_image_from_its_recorded_size(tiled):
    from curate.core.images import probe
    from curate.format.image_plan import sample_image_tokens
    from curate.format.records import samples

    cfg, stats = tiled
    assert stats["image_plan"] == "deepseek_vl2"
    checked = 0
    for row in pq.read_table(cfg.out_dir / "parquet").to_pylist():
        for sample in samples(row):
            if not sample["images"]:
                assert sample["image_tokens"] == [] and sample["image_sizes"] == []
                continue
            assert [list(probe(sample["image"]))] == sample["image_sizes"]  # recorded = the stored image's size
            assert sample["image_tokens"] == sample_image_tokens("deepseek_vl2", sample["image_sizes"], 1)
            checked += 1
    assert checked > 1000


def test_no_tiled_sequence_recounted_by_the_trainer_exceeds_seq_len(tiled):
    """The trainer's own encoding (its collator under the same plan, slots from the recorded sizes) gives every
    packed sample the length the packer stored, and no sequence passes seq_len."""
    from curate.core.shards import read_tar
    from curate.train.data import Collator, shard_item
    from curate.train.pixels import ImageInput

    cfg, stats = tiled
    counter = make_tokenizer(cfg.tokenizer)
    collate = Collator(counter, ImageInput("deepseek_vl2", n_queries=256, image_size=448), cfg.seq_len)
    sequences = 0
    for tar in sorted(cfg.out_dir.glob("shards/*.tar")):
        for row in read_tar(tar):
            item = shard_item(row)
            lengths = [len(collate.encode(s).input_ids) for s in item["samples"]]
            assert lengths == [b[1] for b in row["boundaries"]]
            assert sum(lengths) == row["tokens"] <= cfg.seq_len
            sequences += 1
    assert sequences == stats["sequences"]
    print(f"packing efficiency deepseek_vl2 {stats['packing_efficiency']} over {sequences} sequences")


def test_samples_whose_tiles_cannot_fit_are_counted_out_not_cut(tiled):
    cfg, stats = tiled
    index = pq.read_table(cfg.out_dir / "index", columns=["task", "tokens", "image_missing"]).to_pylist()
    for task, row in stats["tasks"].items():
        indexed = [r for r in index if r["task"] == task]
        assert row["pool"] + row["unpackable"] + row["image_missing"] + row["image_size_unknown"] == len(indexed)
        assert row["unpackable"] == sum(r["tokens"] > cfg.seq_len and not r["image_missing"] for r in indexed)
    assert stats["tasks"]["ocr"]["unpackable"] > 0  # large documents with long line lists overflow 2048


def test_tiled_mixture_validates(tiled):
    from curate.mixture.validate import validate_mix

    cfg, _ = tiled
    checked, bad = validate_mix(cfg.out_dir)
    assert checked == 3000 and not bad
