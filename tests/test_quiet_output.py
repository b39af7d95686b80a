"""Progress instead of logs (issue 21): a normal `curate filter` on the demo prints at most 40 lines, none that
looks like an error, with one progress line per stage; what Ray and img2dataset print goes to the run folder's
logs/filter.log (on the terminal with --verbose)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO, demo_overrides

ERROR_LOOKING = re.compile(r"error|traceback|exception|\bE\b|core_worker|warn", re.IGNORECASE)


def _filter(demo_input, tiny_clip, out, *flags: str) -> subprocess.CompletedProcess:
    sets = [a for s in demo_overrides(demo_input, tiny_clip, out) for a in ("--set", s)]
    command = [sys.executable, "-m", "curate", *flags, "filter", str(REPO / "pipelines" / "filter_demo.yaml"), *sets]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_a_normal_filter_run_prints_at_most_40_lines_none_like_an_error(demo_input, tiny_clip, tmp_path):
    proc = _filter(demo_input, tiny_clip, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout + proc.stderr
    lines = printed.count("\n")  # as a terminal or `wc -l` counts them (progress bars redraw with \r)
    assert lines <= 40, printed
    # reject reasons in the summary ("image:decode_error") are data, not errors
    suspicious = [line for line in printed.splitlines() if ERROR_LOOKING.search(line) and "  image:" not in line]
    assert not suspicious, suspicious
    for stage in ("download:", "filter:"):
        assert re.search(rf"{stage} +100%.*rows/s|{stage} +100%.*chunks/s|{stage} 100%", printed), (stage, printed)
    assert "input rows" in printed and "kept" in printed  # the summary
    log = (tmp_path / "run" / "logs" / "filter.log").read_text()
    assert "Ray" in log and "img2dataset" not in printed.lower()  # the tools' output went to the file


def test_verbose_keeps_the_tools_output_on_the_terminal(demo_input, tiny_clip, tmp_path):
    proc = _filter(demo_input, tiny_clip, tmp_path / "run", "--verbose")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ray" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "logs" / "filter.log").exists()
