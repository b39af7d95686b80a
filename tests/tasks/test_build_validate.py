"""`curate build` on ../shared/data, then `curate validate` on everything built and on hand-broken samples."""

import io
import json
import tarfile

import jsonschema
import pyarrow.parquet as pq
import pytest
from helpers import REPO

from curate.__main__ import main
from curate.commands.build.config import build_from_dict, load_build
from curate.commands.build.run import run_build
from curate.core.config import to_dict

TASK_NAMES = ("caption", "vqa", "grounding", "ref_grounding", "grounded_caption", "ocr", "text")


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    text = (REPO / "pipelines" / "build_shared.yaml").read_text().replace("../shared/data", str(shared_data))
    path = tmp_path_factory.mktemp("cfg") / "tasks.yaml"
    path.write_text(text)
    out = tmp_path_factory.mktemp("build") / "tasks"
    cfg = load_build(path, [f"output.dir={out}"])
    return cfg, run_build(cfg)


def test_every_task_is_built_with_counted_skips(built):
    cfg, stats = built
    for task in TASK_NAMES:
        assert stats["tasks"][task]["samples"] > 0, task
    assert stats["tasks"]["ref_grounding"]["samples"] == stats["tasks"]["grounded_caption"]["samples"] == 320
    assert stats["tasks"]["ref_grounding"]["skipped"] == {"no_box": 15}
    assert json.loads((cfg.out_dir / "stats.json").read_text()) == stats


def test_outputs_read_with_webdataset_and_pyarrow_and_match_the_schema(built):
    import webdataset as wds

    cfg, stats = built
    schema = json.loads((REPO / "schemas" / "task_sample.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for task in TASK_NAMES:
        table = pq.read_table(cfg.out_dir / task / "parquet")
        assert table.num_rows == stats["tasks"][task]["samples"]
        shards = sorted(str(p) for p in (cfg.out_dir / task / "shards").glob("*.tar"))
        samples = list(wds.WebDataset(shards, shardshuffle=False))
        assert len(samples) == table.num_rows
        for sample in samples:
            meta = json.loads(sample["json"])
            validator.validate(meta)
            if task in ("caption", "grounding", "ocr"):  # sources with local images: bytes travel with the sample
                assert "jpg" in sample
            if task == "text":
                assert "jpg" not in sample and meta["images"] == []


def test_validate_passes_on_everything_built(built, capsys):
    cfg, stats = built
    assert main(["validate", str(cfg.out_dir)]) == 0
    total = sum(t["samples"] for t in stats["tasks"].values())
    assert f"{2 * total} samples checked, 0 invalid" in capsys.readouterr().out  # shards + parquet


BROKEN = {
    "space-in-box": ("<img>a.jpg</img><ref>x</ref>", "<box>(1,2), (3,4)</box><|endoftext|>"),
    "five-numbers": ("<img>a.jpg</img><ref>x</ref>", "<box>(1,2),(3,4,5)</box><|endoftext|>"),
    "decimal-box": ("<img>a.jpg</img><ref>x</ref>", "<box>(1.5,2),(3,4)</box><|endoftext|>"),
    "box-over-999": ("<img>a.jpg</img><ref>x</ref>", "<box>(1,2),(3,1000)</box><|endoftext|>"),
    "unclosed-ref": (
        "<img>a.jpg</img>OCR with grounding:",
        "<ref> line<quad>(1,1),(2,1),(2,2),(1,2)</quad><|endoftext|>",
    ),
    "nested-ref": (
        "<img>a.jpg</img>Generate the caption in English with grounding:",
        " a<ref> b<ref> c</ref></ref><box>(1,1),(2,2)</box><|endoftext|>",
    ),
    "quad-after-space": (
        "<img>a.jpg</img>OCR with grounding:",
        "<ref> line</ref> <quad>(1,1),(2,1),(2,2),(1,2)</quad><|endoftext|>",
    ),
    "no-eos": ("<img>a.jpg</img>Generate the caption in English:", " a cat"),
    "eos-twice": ("", "a<|endoftext|>b<|endoftext|>"),
    "chat-token": ("<img>a.jpg</img>Generate the caption in English:", " a <|im_start|> cat<|endoftext|>"),
}


def test_validate_fails_on_hand_broken_samples_and_names_them(built, tmp_path, capsys):
    cfg, _ = built
    good = next((cfg.out_dir / "caption" / "shards").glob("*.tar"))
    with tarfile.open(good) as tar:
        good_json = next(json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json"))
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        for key, (prefix, target) in [*BROKEN.items(), (good_json["key"], (good_json["prefix"], good_json["target"]))]:
            task = "text" if key == "eos-twice" else "caption"
            images = [] if key == "eos-twice" else good_json["images"] if key == good_json["key"] else ["a.jpg"]
            data = json.dumps(
                {
                    "schema_version": 1,
                    "task": task,
                    "source": "t",
                    "key": key,
                    "images": images,
                    "prefix": prefix,
                    "target": target,
                }
            ).encode()
            info = tarfile.TarInfo(f"{key}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    for key in BROKEN:
        assert f"{key}:" in out, key
    assert f"{good_json['key']}:" not in out
    assert f"{len(BROKEN) + 1} samples checked, {len(BROKEN)} invalid" in out


def test_rebuild_with_other_config_is_refused(built):
    from curate.core.errors import ConfigError

    cfg, _ = built
    raw = to_dict(cfg)
    raw["output"]["samples_per_shard"] = 7
    with pytest.raises(ConfigError, match="a different configuration"):
        run_build(build_from_dict(raw))
