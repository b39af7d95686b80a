"""The one shard writer and reader (issue 15): tar and parquet side by side with the same rows, atomic,
byte-reproducible; one reader for any output; byte locations for later one-seek reads."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pytest

from curate.core.chunks import cut_plan
from curate.core.shards import (
    output_files,
    read_file,
    read_output,
    read_tar,
    read_tar_index,
    shard_done,
    write_shard,
)
from curate.core.storage import read_at

TASK = pa.schema([("key", pa.string()), ("task", pa.string()), ("prefix", pa.string()), ("image", pa.binary())])
SEQUENCE = pa.schema(
    [("key", pa.string()), ("task", pa.string()), ("sample_keys", pa.list_(pa.string())),
     ("image_bytes", pa.list_(pa.binary()))]
)  # fmt: skip


def _task_rows(n):
    image = lambda i: b"\xff\xd8\xff" + bytes([i]) * 50 if i % 2 else None  # noqa: E731
    return [{"key": f"k{i}", "task": "caption", "prefix": f"p{i} 中文", "image": image(i)} for i in range(n)]


def test_tar_and_parquet_hold_the_same_rows_and_rewrite_byte_identically(tmp_path):
    rows = _task_rows(5)
    write_shard(tmp_path / "a", 0, rows, TASK)
    write_shard(tmp_path / "b", 0, rows, TASK)
    assert shard_done(tmp_path / "a", 0) and not shard_done(tmp_path / "a", 1)
    tar_rows = list(read_file(tmp_path / "a" / "shards" / "shard-000000.tar"))
    part_rows = list(read_file(tmp_path / "a" / "parquet" / "part-000000.parquet"))
    assert tar_rows == part_rows == rows
    for name in ("shards/shard-000000.tar", "parquet/part-000000.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with tarfile.open(tmp_path / "a" / "shards" / "shard-000000.tar") as tar:
        names = tar.getnames()
        assert names[:3] == ["k0.json", "k1.jpg", "k1.json"]
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert not list(tmp_path.rglob("*.tmp"))


def test_packed_sequences_keep_one_image_member_per_sample(tmp_path):
    rows = [{"key": "seq-0", "task": "ocr", "sample_keys": ["a", "b", "c"], "image_bytes": [b"x1", None, b"x3"]}]
    write_shard(tmp_path, 0, rows, SEQUENCE)
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as tar:
        assert tar.getnames() == ["seq-0.json", "seq-0.0.jpg", "seq-0.2.jpg"]
    assert list(read_output(tmp_path / "shards")) == list(read_output(tmp_path / "parquet", "parquet")) == rows


def test_read_tar_index_points_at_each_image(tmp_path):
    rows = _task_rows(4)
    write_shard(tmp_path, 0, rows, TASK)
    tar = tmp_path / "shards" / "shard-000000.tar"
    index = list(read_tar_index(tar))
    assert [meta["key"] for meta, _ in index] == ["k0", "k1", "k2", "k3"]
    for (meta, where), row in zip(index, rows, strict=True):
        assert "image" not in meta
        if row["image"] is None:
            assert where == {}
        else:
            assert read_at(tar, *where["jpg"]) == row["image"]


def test_a_truncated_tar_reports_after_the_rows_it_could_read(tmp_path):
    write_shard(tmp_path, 0, _task_rows(6), TASK)
    tar = tmp_path / "shards" / "shard-000000.tar"
    tar.write_bytes(tar.read_bytes()[:2000])
    errors = []
    got = list(read_tar(tar, lambda path, err: errors.append((path, err))))
    assert errors and errors[0][0] == tar and len(got) < 6
    with pytest.raises(tarfile.TarError):
        list(read_tar(tar))


def test_output_files_follow_the_run_json_and_skip_scratch_folders(tmp_path):
    out = tmp_path / "build"
    for task in ("caption", "ocr"):
        write_shard(out / task, 0, _task_rows(2), TASK)
    (out / "_spool" / "x").mkdir(parents=True)
    (out / "_spool" / "x" / "chunk-000000.parquet").write_bytes(b"")
    (out / "run.json").write_text(json.dumps({"command": "build"}))
    assert [p.relative_to(out).as_posix() for p in output_files(out)] == [
        "caption/shards/shard-000000.tar",
        "ocr/shards/shard-000000.tar",
    ]
    (out / "run.json").unlink()  # a plain folder: every shard below it, scratch folders left out
    assert len(output_files(out, "parquet")) == 2


def test_cut_plan_makes_fixed_size_shards_across_spool_parts():
    plan = cut_plan([("a", 5), ("b", 0), ("c", 7), ("d", 2)], 4)
    assert [sum(stop - start for _, start, stop in shard) for shard in plan] == [4, 4, 4, 2]
    assert plan[1] == [("a", 4, 5), ("c", 0, 3)]
    assert [(p, s, e) for shard in plan for p, s, e in shard if p == "d"] == [("d", 0, 2)]


def test_member_names_are_checked_on_write(tmp_path):
    with pytest.raises(ValueError, match="unsafe tar member name"):
        write_shard(tmp_path, 0, [{"key": "../x", "task": "t", "prefix": "", "image": None}], TASK)
    assert not list((tmp_path / "shards").glob("*")) if (tmp_path / "shards").exists() else True
    assert io  # the module stays importable without a display
