"""The attempt folder's cleanup kills the attempt's leftover processes, and only those (the kill -9 cases are in
tests/test_resume_after_kill.py, slow)."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

# In a fresh interpreter, so the resource tracker is first needed inside the attempt, as in a real run, where
# img2dataset's first semaphore starts it.
SCRIPT = """
import json, multiprocessing, os, sys
from pathlib import Path
from multiprocessing import resource_tracker
from curate.download.attempt import attempt_dir

raw = Path(sys.argv[1])
(raw / "_attempt-1-1").mkdir(parents=True)  # left by an earlier, killed attempt
with attempt_dir(raw) as attempt:
    lock = multiprocessing.get_context("spawn").Lock()
    seen = sorted(p.name for p in raw.iterdir())
tracker = resource_tracker._resource_tracker._pid
alive = tracker is not None and os.waitpid(tracker, os.WNOHANG) == (0, 0)
del lock
print(json.dumps({"alive": alive, "inside": seen, "after": sorted(p.name for p in raw.iterdir())}))
"""


def test_the_resource_tracker_outlives_the_attempt_cleanup(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "raw")], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # Killed with the attempt's workers, the tracker was relaunched empty and printed a traceback per semaphore.
    assert "Traceback" not in proc.stderr and "resource_tracker" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert result["alive"]
    assert (
        len(result["inside"]) == 1
        and result["inside"][0].startswith("_attempt-")
        and result["inside"] != ["_attempt-1-1"]
    )
    assert result["after"] == []
