"""Bounded memory (issue 8): a 100k-row run keeps the peak memory of all its processes under 4 GiB, and the
peak barely grows from 20k to 100k rows (work streams chunk by chunk; nothing holds the whole run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO, demo_overrides

from curate.core.process_memory import TreeMemory
from curate.demo.make import repeat_rows

pytestmark = pytest.mark.slow
GIB = 1024**3


def _peak(demo_input, tiny_clip, tmp_path, rows: int) -> TreeMemory:
    urls = repeat_rows(demo_input, rows, tmp_path / f"urls_{rows}.parquet")
    out = tmp_path / f"run_{rows}"
    sets = [*demo_overrides(demo_input, tiny_clip, out), f"input.url_list.path={urls}", "input.rows_per_chunk=10000"]
    command = [sys.executable, "-m", "curate", "filter", str(REPO / "pipelines" / "filter_demo.yaml")]
    command += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with TreeMemory(proc.pid, every_s=0.5) as memory:
        _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err.decode()[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input_rows"] == rows and stats["kept_rows"] > rows // 3
    print(f"{rows} rows: {memory.as_dict()} in {stats['elapsed_s']} s; at the peak:\n{memory.breakdown()}")
    shutil.rmtree(out)  # measured: a 100k-row run's shards and raw download are gigabytes of disk
    return memory


def test_peak_memory_of_a_100k_row_run_is_bounded_and_flat(demo_input, tiny_clip, tmp_path):
    small = _peak(demo_input, tiny_clip, tmp_path, 20_000)
    large = _peak(demo_input, tiny_clip, tmp_path, 100_000)
    assert large.peak_rss < 4 * GIB, f"{large.as_dict()}; at the peak:\n{large.breakdown()}"
    assert large.peak_pss <= 1.25 * small.peak_pss, (small.as_dict(), large.as_dict())
