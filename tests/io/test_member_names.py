"""Tar/WebDataset member names can never write outside the output dir (issue 8): writers refuse unsafe names,
keys built from untrusted ids are sanitized, and readers given a hostile shard write nothing anywhere."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from curate.__main__ import main
from curate.core.tar import add_member, check_member_name
from curate.tasks.base import make_key

HOSTILE = ["../evil.json", "a/../../evil.json", "/etc/passwd", "..", ".hidden", "a\\b.jpg", "a\x00b", "", "x" * 101]


@pytest.mark.parametrize("name", HOSTILE)
def test_writers_refuse_unsafe_member_names(name, tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as tar, pytest.raises(ValueError, match="unsafe tar member"):
        add_member(tar, name, b"{}")


def test_safe_member_names_pass():
    for name in ("000000001.jpg", "coco-123-0.json", "mix-000001.0.jpg", "caption/shard-000000.tar"):
        assert check_member_name(name) == name


@pytest.mark.parametrize("record_id", ["../../etc/passwd", "/abs/path", "a\\b", "x.y.z", "名前", "a\x00b"])
def test_keys_from_untrusted_ids_are_safe_member_names(record_id):
    key = make_key("coco", record_id, 0)
    check_member_name(f"{key}.json")
    assert "/" not in key and "." not in key


def _hostile_shard(path):
    sample = {"key": "x", "task": "caption", "text": "<img>a.jpg</img>a cat<|endoftext|>"}
    with tarfile.open(path, "w") as tar:
        for name in ("../../escaped.json", "/tmp/curate-escaped-abs.json", "ok.json"):
            data = json.dumps(sample).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_readers_given_a_hostile_shard_write_nothing_outside(tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    shard = work / "hostile.tar"
    _hostile_shard(shard)
    before = {p for p in tmp_path.rglob("*")}
    assert main(["validate", str(shard)]) == 1  # the samples are invalid: reported, not extracted
    main(["inspect", str(shard), "--out", str(work / "preview.png")])
    created = {p for p in tmp_path.rglob("*")} - before
    assert created <= {work / "preview.png"}, created
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "a" / "escaped.json").exists()
    assert not Path("/tmp/curate-escaped-abs.json").exists()
