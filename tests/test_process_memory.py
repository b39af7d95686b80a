"""TreeMemory sums a process and its children, and names the processes at the peak (issue 8's memory bound)."""

from __future__ import annotations

import subprocess
import sys

from curate.core.process_memory import TreeMemory

# A parent that starts a child holding 200 MB for 2 s, then outlives it.
PARENT = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'x = bytearray(200_000_000); import time; time.sleep(2)']); "
    "time.sleep(3)"
)


def test_the_peak_counts_the_child_and_names_it():
    proc = subprocess.Popen([sys.executable, "-c", PARENT])
    with TreeMemory(proc.pid, every_s=0.1) as memory:
        proc.wait(timeout=60)
    assert memory.peak_processes == 2
    assert 200_000_000 < memory.peak_rss < 400_000_000 and memory.peak_pss <= memory.peak_rss
    (top_rss, top_name), (_, parent_name) = memory.peak_top
    assert top_rss > 200_000_000 and "bytearray(200_000_000)" in top_name and "subprocess.Popen" in parent_name
    lines = memory.breakdown().splitlines()
    assert len(lines) == 2 and lines[0].strip().split()[1] == "MiB" and "bytearray" in lines[0]
