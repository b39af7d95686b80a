"""The one run-folder lifecycle (issue 15): lock, identity, resume / refuse / overwrite, markers, finish."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from curate.core.errors import ConfigError
from curate.core.run_folder import exclusive, open_run, paths_digest, prepare, read_run

IDENTITY = {"config": "c1", "input": "i1", "models": "m1"}


def _open(out, identity=IDENTITY, command="build", overwrite=False, config=None):
    config = config or {"name": "x", "budget": 1}
    return prepare(out, command, identity, config, json.dumps(config), overwrite=overwrite)


def test_a_new_folder_records_the_command_identity_and_config(tmp_path):
    run = _open(tmp_path / "run")
    assert not run.resumed and run.command == "build"
    record = read_run(tmp_path / "run")
    assert record["command"] == "build" and {k: record[k] for k in IDENTITY} == IDENTITY
    assert record["resolved_config"] == {"name": "x", "budget": 1}
    assert (tmp_path / "run" / "config.yaml").exists()


def test_same_identity_resumes_and_removes_stale_temp_files(tmp_path):
    _open(tmp_path / "run")
    (tmp_path / "run" / "part.parquet.tmp").write_bytes(b"half")
    run = _open(tmp_path / "run")
    assert run.resumed and not (tmp_path / "run" / "part.parquet.tmp").exists()


@pytest.mark.parametrize(
    ("identity", "says"),
    [
        ({**IDENTITY, "config": "c2"}, "different configuration (changed: budget)"),
        ({**IDENTITY, "input": "i2"}, "different input data"),
        ({**IDENTITY, "models": "m2"}, "different model weights"),
    ],
)
def test_another_identity_is_refused_naming_what_changed(tmp_path, identity, says):
    _open(tmp_path / "run")
    with pytest.raises(ConfigError, match=re.escape(says)):
        _open(tmp_path / "run", identity, config={"name": "x", "budget": 2})
    assert _open(tmp_path / "run", identity, overwrite=True).resumed is False


def test_another_command_and_foreign_folders_are_refused(tmp_path):
    _open(tmp_path / "run", command="mix")
    with pytest.raises(ConfigError, match="output of `curate mix`, not of `curate build`"):
        _open(tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not a curate build run"):
        _open(tmp_path / "other")


def test_markers_hold_counters_and_finish_leaves_stats_and_success_only(tmp_path):
    run = _open(tmp_path / "run")
    run.mark_done("build", 3, {"samples": {"caption": 5}})
    run.mark_done("build", 0, {"samples": {}})
    assert run.markers("build") == {0: {"samples": {}}, 3: {"samples": {"caption": 5}}}
    assert run.pending("build", range(5)) == [1, 2, 4]
    (tmp_path / "run" / "_spool").mkdir()
    run.finish({"samples": 5}, scratch=("_spool",))
    assert run.complete and run.read_stats() == {"samples": 5}
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["_SUCCESS", "config.yaml", "run.json", "stats.json"]


def test_a_second_process_on_the_same_folder_fails_fast(tmp_path):
    out = tmp_path / "run"
    code = (
        "import sys; from pathlib import Path; from curate.core.run_folder import exclusive\n"
        "from curate.core.errors import ConfigError\n"
        f"try:\n    exclusive(Path({str(out)!r})).__enter__()\nexcept ConfigError as e:\n    print(e); sys.exit(3)"
    )
    with exclusive(out):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3 and "in use by another curate process" in result.stdout
    with open_run(out, "ocr", IDENTITY, {}, "", overwrite=False) as run:  # free again once the holder is gone
        assert run.command == "ocr"


def test_paths_digest_sees_renames_resizes_and_rewrites(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("one")
    first = paths_digest([folder])
    (folder / "a.txt").write_text("two")  # same size, new content: a folder lists names and sizes only
    assert paths_digest([folder]) == first
    assert paths_digest([folder / "a.txt"]) != paths_digest([tmp_path / "missing"])
    before = paths_digest([folder / "a.txt"])
    (folder / "a.txt").write_text("three")
    assert paths_digest([folder / "a.txt"]) != before and paths_digest([folder]) != first
