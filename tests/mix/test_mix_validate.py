"""`curate validate` on mix outputs (issue 15): a clean mixture passes; a deleted image, a truncated tar, a
swapped id, a duplicated sample and a box out of range are each named."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile

import pyarrow.parquet as pq
import pytest

from curate.__main__ import main
from curate.commands.build.config import build_from_dict
from curate.commands.build.run import run_build
from curate.commands.mix.config import MixConfig
from curate.commands.mix.run import run_mix
from curate.core.config import build_dataclass
from curate.mixture.validate import validate_mix


@pytest.fixture(scope="module")
def mixture(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixv")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"Document {i} says something long enough to be a sample. " * 3 for i in range(40)))
    build = {
        "name": "b",
        "sources": [{"shapes": {"count": 80, "size": 48, "seed": 3}}, {"text": {"paths": [str(corpus)]}}],
        "records_per_chunk": 25,
        "output": {"dir": str(root / "build"), "samples_per_shard": 30},
    }
    run_build(build_from_dict(build))
    mix = {
        "name": "m",
        "inputs": [str(root / "build")],
        "budget": 120,
        "weights": {"caption": 0, "vqa": 0, "grounding": 0, "ref_grounding": 1, "grounded_caption": 1, "ocr": 0,
                    "text": 1},
        "with_replacement": [],
        "window": 50,
        "sft": {"conversations": 10},
        "output": {"dir": str(root / "mix"), "samples_per_shard": 8},
    }  # fmt: skip
    cfg = build_dataclass(MixConfig, mix, "test")
    run_mix(cfg)
    return cfg.out_dir


@pytest.fixture
def copy(mixture, tmp_path):
    out = tmp_path / "mix"
    shutil.copytree(mixture, out)
    return out


def _rewrite_tar(path, edit):
    """Rewrite a tar with edit(name, data) -> (name, data) or None (dropped)."""
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            kept = edit(name, data)
            if kept is not None:
                info = tarfile.TarInfo(kept[0])
                info.size = len(kept[1])
                tar.addfile(info, io.BytesIO(kept[1]))


def _edit_json(path, key, change):
    def edit(name, data):
        if name == f"{key}.json":
            meta = json.loads(data)
            change(meta)
            return name, json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()
        return name, data

    _rewrite_tar(path, edit)


def _edit_parquet(path, key, change):
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        if row["key"] == key:
            change(row)
    pq.write_table(pq.read_table(path).from_pylist(rows, schema=pq.read_schema(path)), path)


def _first_with_image(out):
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            names = tar.getnames()
        jpgs = [n for n in names if n.endswith(".jpg")]
        if jpgs:
            key, index, _ = jpgs[0].split(".")
            return shard, key, int(index)
    raise AssertionError("no image in the mixture")


def test_a_clean_mixture_validates(mixture, capsys):
    checked, bad = validate_mix(mixture)
    assert checked == 120 and bad == {}
    assert main(["validate", str(mixture)]) == 0
    assert "120 samples checked, 0 invalid" in capsys.readouterr().out


def test_a_deleted_image_is_named(copy):
    shard, key, index = _first_with_image(copy)
    _rewrite_tar(shard, lambda name, data: None if name == f"{key}.{index}.jpg" else (name, data))
    _, bad = validate_mix(copy)
    assert any("has no JPEG bytes" in p for p in bad[key]), bad
    assert any("tar and parquet differ in image_bytes" in p for p in bad[key])


def test_a_truncated_tar_is_named(copy):
    shard = sorted((copy / "shards").glob("*.tar"))[1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    _, bad = validate_mix(copy)
    assert any("unreadable or truncated tar" in p for p in bad[shard.name]), bad


def test_a_swapped_id_is_named(copy):
    shard, key, _ = _first_with_image(copy)
    _edit_json(shard, key, lambda meta: meta["sample_keys"].reverse() if len(meta["sample_keys"]) > 1 else
               meta.update(sample_keys=["someone-else"]))  # fmt: skip
    _, bad = validate_mix(copy)
    assert any("tar and parquet differ in sample_keys" in p for p in bad[key]), bad


def test_a_sample_drawn_twice_without_replacement_is_named(copy):
    shards = sorted((copy / "shards").glob("*.tar"))
    first = next(r for r in pq.read_table(copy / "parquet" / "part-000000.parquet").to_pylist() if r["task"] != "text")
    second = pq.read_table(copy / "parquet" / "part-000001.parquet").to_pylist()
    twin = next(r for r in second if r["task"] == first["task"])
    stolen = first["sample_keys"][0]

    def change(meta):
        meta["sample_keys"][0] = stolen

    _edit_json(shards[1], twin["key"], change)
    _edit_parquet(copy / "parquet" / "part-000001.parquet", twin["key"], change)
    _, bad = validate_mix(copy)
    assert any(f"{stolen} appears twice" in p for p in bad[twin["key"]]), bad


def test_a_box_out_of_range_is_named(copy):
    shard = sorted((copy / "shards").glob("*.tar"))[0]
    rows = pq.read_table(copy / "parquet" / "part-000000.parquet").to_pylist()
    row = next(r for r in rows if "<box>" in r["targets"][0])
    box = r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>"
    broken = re.sub(box, r"<box>(\1,\2),(\3,1000)</box>", row["targets"][0], count=1)

    def change(meta):
        meta["targets"][0] = broken

    _edit_json(shard, row["key"], change)
    _edit_parquet(copy / "parquet" / "part-000000.parquet", row["key"], change)
    _, bad = validate_mix(copy)
    sample = row["sample_keys"][0]
    assert any(p.startswith(f"{sample}: box '") for p in bad[row["key"]]), bad  # 1000 is not a 0..999 value
    assert any(p.startswith(f"{sample}: boundary") for p in bad[row["key"]])  # one more byte: re-counts differ


def test_a_conversation_image_that_is_gone_is_named(copy):
    items = json.loads((copy / "sft.json").read_text())
    assert items
    image = re.search(r"<img>(.*?)</img>", items[0]["conversations"][0]["value"]).group(1)
    (copy / image).unlink()
    _, bad = validate_mix(copy)
    assert any("does not resolve to JPEG bytes" in p for p in bad[items[0]["id"]]), bad
