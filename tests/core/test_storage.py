"""Object storage through fsspec (curate/core/storage.py, issue 21), on fsspec's in-process memory:// filesystem.
The S3 chain against a real S3-compatible server is tests/io/test_object_storage.py."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from curate.core import storage
from curate.core.atomic import write_bytes_atomic
from curate.core.config import read_yaml
from curate.core.errors import ConfigError
from curate.core.run_folder import open_run
from curate.core.shards import shard_done


@pytest.fixture
def staging(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_STAGING", str(tmp_path / "staging"))
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True) if fs.exists("/") else None
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def objects(fs, root: str) -> dict[str, bytes]:
    return {p.split(root, 1)[1].lstrip("/"): fs.cat(p) for p in fs.find(root)}


def test_urls_and_paths():
    assert storage.is_url("s3://bucket/key") and storage.is_url("GS://b/k") and storage.is_url("hf://datasets/x")
    assert not storage.is_url("out/run") and not storage.is_url("http://example.com/a.jpg")
    assert not storage.is_url("s3://") and not storage.is_url(Path("s3:/bucket"))
    assert storage.output_path("out/run") == Path("out/run")


def test_missing_driver_package_says_which(monkeypatch):
    import fsspec.core

    def no_driver(url):
        raise ImportError("Install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_driver)
    with pytest.raises(ConfigError, match="gcsfs package"):
        storage.filesystem("gs://bucket/x")


def test_fetch_copies_small_files_once_and_reads_shards_in_place(staging):
    staging.pipe({"/in/urls.parquet": b"u" * 10, "/in/run/shards/a.tar": b"a", "/in/run/raw/00000.tar": b"r",
                  "/in/run/run.json": b"{}", "/in/run/sft_images/x.jpg": b"j"})  # fmt: skip
    local = storage.fetch("memory://in/urls.parquet")
    assert local.read_bytes() == b"u" * 10
    folder = storage.fetch("memory://in/run/")
    assert (folder / "run.json").read_bytes() == b"{}"
    assert not any((folder / "shards").iterdir()) and not (folder / "raw").exists()  # raw: no reader needs it
    assert storage.glob(folder, "**/*.tar") == [folder / "shards" / "a.tar"]
    assert storage.exists(folder / "sft_images" / "x.jpg") and not storage.exists(folder / "sft_images" / "y.jpg")
    with storage.open_read(folder / "shards" / "a.tar") as f:
        assert f.read() == b"a"
    (folder / "run.json").write_bytes(b"[]")  # same size: kept, not fetched again
    assert storage.fetch("memory://in/run").joinpath("run.json").read_bytes() == b"[]"
    with pytest.raises(FileNotFoundError):
        storage.open_read(folder / "shards" / "b.tar")
    with pytest.raises(ConfigError, match="does not exist"):
        storage.fetch("memory://in/missing.parquet")


def test_config_urls_become_local_copies_and_output_stays(staging, tmp_path):
    staging.pipe("/in/corpus.txt", b"hello")
    config = tmp_path / "c.yaml"
    config.write_text("name: x\nsources: [{text: {paths: [memory://in/corpus.txt]}}]\noutput: {dir: memory://o/x}\n")
    raw = read_yaml(config, [])
    assert Path(raw["sources"][0]["text"]["paths"][0]).read_bytes() == b"hello"
    assert raw["output"]["dir"] == "memory://o/x"
    assert storage.portable(raw)["sources"][0]["text"]["paths"][0].startswith("staged:")


def run_identity() -> dict:
    return {"config": "c", "input": "i", "models": ""}


def test_mirrored_run_uploads_evicts_and_finishes(staging):
    url = "memory://bucket/run"
    storage.mirror(url)
    out = storage.output_path(url)
    with open_run(out, "mix", run_identity(), {}, "a: 1\n", overwrite=False) as run:
        assert storage.shown(out) == url
        write_bytes_atomic(out / "shards" / "shard-000000.tar", b"tar")
        write_bytes_atomic(out / "parquet" / "part-000000.parquet", b"parquet")
        assert not (out / "shards" / "shard-000000.tar").exists()  # uploaded, then evicted
        assert shard_done(out, 0) and not shard_done(out, 1)
        write_bytes_atomic(out / "_spool" / "s" / "chunk-000000.tar", b"spool")
        assert not (out / "_spool" / "s" / "chunk-000000.tar").exists()  # spool parts are read back remotely
        storage.move(out / "_spool" / "s" / "chunk-000000.tar", out / "shards" / "shard-000001.tar")
        with storage.open_read(out / "shards" / "shard-000001.tar") as f:
            assert f.read() == b"spool"
        run.mark_done("write", 0, {"rows": 1})
        assert "_chunks/write/chunk-000000.json" in objects(staging, "/bucket/run")
        assert "_SUCCESS" not in objects(staging, "/bucket/run")
        run.finish({"rows": 1})
    found = objects(staging, "/bucket/run")
    assert found["shards/shard-000000.tar"] == b"tar" and found["parquet/part-000000.parquet"] == b"parquet"
    assert found["shards/shard-000001.tar"] == b"spool" and not any(n.startswith("_spool") for n in found)
    assert json.loads(found["stats.json"]) == {"rows": 1} and found["_SUCCESS"] == b""
    assert not any(name.startswith("_chunks") for name in found)  # deleted locally by finish, so remotely too
    assert not out.exists()  # the local working folder goes once the objects are complete


def test_killed_mirrored_run_resumes_from_object_storage_elsewhere(staging, tmp_path, monkeypatch):
    url = "memory://bucket/run"
    storage.mirror(url)
    out = storage.output_path(url)
    with open_run(out, "mix", run_identity(), {}, "a: 1\n", overwrite=False) as run:
        write_bytes_atomic(out / "shards" / "shard-000000.tar", b"tar")
        write_bytes_atomic(out / "parquet" / "part-000000.parquet", b"pq")
        run.mark_done("write", 0, {"rows": 1})
    # another machine: a new staging root, nothing local
    monkeypatch.setenv("CURATE_STAGING", str(tmp_path / "elsewhere"))
    storage.mirror(url)
    out = storage.output_path(url)
    assert (out / "run.json").is_file() and not any((out / "shards").iterdir())
    with open_run(out, "mix", run_identity(), {}, "a: 1\n", overwrite=False) as run:
        assert run.resumed and run.pending("write", range(2)) == [1] and shard_done(out, 0)
        run.finish({})
    assert "shards/shard-000000.tar" in objects(staging, "/bucket/run")
    # --overwrite deletes the objects too
    storage.mirror(url)
    with open_run(storage.output_path(url), "mix", run_identity(), {}, "", overwrite=True):
        pass
    assert set(objects(staging, "/bucket/run")) == {"run.json", "config.yaml"}


def test_local_runs_are_untouched(tmp_path):
    write_bytes_atomic(tmp_path / "shards" / "shard-000000.tar", b"x")
    assert (tmp_path / "shards" / "shard-000000.tar").read_bytes() == b"x"
    assert storage.mirror_of(tmp_path) is None and not storage.sync_mirror(tmp_path)
