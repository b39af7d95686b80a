"""kill -9 in the middle of a filter run, at several points, then rerun into the same dir (issue 8): the final
kept set equals an uninterrupted run's, no key twice, no partial file visible, every input row in the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import REPO, demo_overrides

from curate.download.attempt import ATTEMPT_ENV, _pids_with_env

pytestmark = pytest.mark.slow
SMALL_CHUNKS = ["input.rows_per_chunk=50", "output.samples_per_shard=20"]  # 12 chunks, ~19 shards
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}


def _curate_args(demo_input: Path, tiny_clip: Path, out: Path) -> list[str]:
    sets = [*demo_overrides(demo_input, tiny_clip, out), *SMALL_CHUNKS]
    return ["filter", str(REPO / "pipelines" / "filter_demo.yaml"), *[a for s in sets for a in ("--set", s)]]


def _run(args: list[str], out: Path, kill_when=None, crash: tuple[str, int, str] | None = None) -> int:
    """Run curate (optionally under crash_at.py); with `kill_when`, SIGKILL it once kill_when(out) is true."""
    prefix = [sys.executable, str(REPO / "tests" / "crash_at.py"), str(out), *map(str, crash), "--"] if crash else []
    command = prefix + ([] if crash else [sys.executable, "-m", "curate"]) + args
    log = out.parent / f"{out.name}.log"
    with open(log, "ab") as stderr:  # a file, not a pipe: processes a kill leaves behind would hold a pipe open
        proc = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        if kill_when is not None:
            while proc.poll() is None and not kill_when(out):
                time.sleep(0.01)
            if proc.poll() is None:
                proc.kill()  # SIGKILL, the main process only, as the OOM killer or `kill -9 PID` does
        proc.wait(timeout=600)
    if proc.returncode not in (0, -9):
        raise AssertionError(log.read_text()[-3000:])
    return proc.returncode


def _kept(out: Path) -> list[str]:
    ledger = pq.read_table(out / "ledger", columns=["key", "reject_reason"]).to_pylist()
    return sorted(r["key"] for r in ledger if r["reject_reason"] is None)


def _shard_keys(out: Path) -> list[str]:
    keys = []
    for path in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:  # opens and reads every member: no truncated shard
            for member in tar.getmembers():
                assert len(tar.extractfile(member).read()) == member.size
                if member.name.endswith(".json"):
                    keys.append(member.name.removesuffix(".json"))
    return keys


def test_kill_9_at_several_points_then_resume_equals_an_uninterrupted_run(demo_input, tiny_clip, tmp_path):
    reference = tmp_path / "reference"
    assert _run(_curate_args(demo_input, tiny_clip, reference), reference) == 0
    out = tmp_path / "killed"
    args = _curate_args(demo_input, tiny_clip, out)
    parts = lambda o: len(list((o / "ledger").glob("part-*.parquet")))  # noqa: E731
    kills = [
        # mid-download: img2dataset's workers outlive us and go on writing into their attempt folder
        {"kill_when": lambda o: (o / "raw" / "00001_stats.json").exists()},
        # between moving a finished raw shard's tar into raw/ and its stats (the shard's completion mark)
        {"crash": ("raw/*_stats.json", 3, "before")},
        # a ledger part half written under its temp name
        {"crash": ("ledger/part-*", 4, "before")},
        # while Ray actors score the remaining chunks
        {"kill_when": lambda o: parts(o) >= 8},
        # a shard half written, then just after the stats file
        {"crash": ("shards/shard-*", 5, "before")},
        {"crash": ("stats.json", 1, "after")},
    ]
    for point in kills:
        assert _run(args, out, **point) == -9, f"the run finished before the kill point {point}"
        assert not (out / "_SUCCESS").exists()
    assert _run(args, out) == 0

    input_rows = pq.read_table(out / "input.parquet").num_rows
    ledger = pq.read_table(out / "ledger")
    keys = ledger.column("key").to_pylist()
    assert len(keys) == input_rows == len(set(keys))  # every row once
    assert _kept(out) == _kept(reference)
    shard_keys = _shard_keys(out)
    assert shard_keys == _shard_keys(reference) and not [k for k, n in Counter(shard_keys).items() if n > 1]
    reasons = lambda o: Counter(pq.read_table(o / "ledger", columns=["reject_reason"]).column(0).to_pylist())  # noqa: E731
    assert reasons(out) == reasons(reference)
    assert not list(out.rglob("*.tmp")), "a temp file is visible"
    assert not list((out / "raw").glob("_attempt-*")), "an attempt folder was left"
    assert not _pids_with_env(f"{ATTEMPT_ENV}={(out / 'raw').resolve()}/".encode()), "download workers left"
