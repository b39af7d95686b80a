"""One img2dataset call = one attempt folder; only finished shards of the live attempt reach raw/.

Why: img2dataset writes its tar and parquet under their final names while it downloads, and its spawned workers
outlive a `kill -9` of our process: they finish the shard in hand and write it (with the run's own loopback
server gone, as a shard of connection errors). A resumed run must never read such a shard, nor race a worker
writing the same file. So each attempt downloads into raw/_attempt-<id>/, a harvester thread in our process
moves every shard img2dataset finished ({shard}_stats.json, written last) into raw/ (tar and parquet first,
stats last, each with an atomic rename), and a new attempt first kills the workers of earlier attempts (found by
the environment variable they inherited) and deletes their folders.

A watchdog process reads a pipe from us; when we die (kill -9 included) the pipe closes and it kills the
attempt's workers at once, so they do not go on fetching (or, img2dataset's logger, live forever).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker
from pathlib import Path

from curate.core.atomic import write_atomic
from curate.core.storage import publish

log = logging.getLogger(__name__)
# Blocks on stdin (our pipe) until it closes, i.e. until we finish or die, then kills the attempt's processes.
WATCHDOG = (
    "import sys; sys.stdin.buffer.read(); "
    "from curate.download.attempt import kill_holders; kill_holders(sys.argv[1].encode())"
)
ATTEMPT_ENV = "CURATE_DOWNLOAD_ATTEMPT"
ATTEMPT_PREFIX = "_attempt-"
STATS_SUFFIX = "_stats.json"


def kill_holders(prefix: bytes) -> int:
    """SIGKILL every process whose environment holds an entry starting with `prefix`; returns how many."""
    killed = 0
    for pid in _pids_with_env(prefix):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def stop_earlier_attempts(raw_dir: Path) -> int:
    """Kill leftover download workers of earlier attempts on this raw dir and delete their folders."""
    killed = kill_holders(f"{ATTEMPT_ENV}={raw_dir.resolve()}/{ATTEMPT_PREFIX}".encode())
    if killed:
        log.warning("killed %d download workers left by an earlier, killed attempt", killed)
    for folder in raw_dir.glob(f"{ATTEMPT_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)
    return killed


def _pids_with_env(prefix: bytes) -> list[int]:
    """Processes (other than us) whose environment holds `prefix...`; Linux /proc only, else none."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(item.startswith(prefix) for item in environ.split(b"\0")):
            pids.append(pid)
    return pids


def harvest(attempt: Path, raw_dir: Path, seeded: set[str]) -> list[str]:
    """Move the shards img2dataset has finished in `attempt` into `raw_dir`; returns their names (added to
    `seeded`, so each is harvested once)."""
    moved = []
    for stats in sorted(attempt.glob(f"*{STATS_SUFFIX}")):
        name = stats.name[: -len(STATS_SUFFIX)]
        if name in seeded:
            continue
        for suffix in (".tar", ".parquet"):
            part = attempt / f"{name}{suffix}"
            if part.exists():
                os.replace(part, raw_dir / part.name)
                publish(raw_dir / part.name)
        # Last, as a copy: its presence in raw/ marks the shard complete, and img2dataset's logger process
        # still reads the original (a moved one killed it with FileNotFoundError, seen in `curate bench`).
        write_atomic(raw_dir / stats.name, lambda tmp, src=stats: shutil.copyfile(src, tmp))
        seeded.add(name)
        moved.append(name)
    return moved


@contextmanager
def attempt_dir(raw_dir: Path, every_s: float = 0.5) -> Iterator[Path]:
    """A fresh attempt folder seeded with the finished shards' stats (img2dataset's incremental mode skips
    them), harvested while the block runs and once more at its end."""
    stop_earlier_attempts(raw_dir)
    attempt = raw_dir / f"{ATTEMPT_PREFIX}{os.getpid()}-{time.time_ns()}"
    attempt.mkdir(parents=True)
    seeded = set()
    for stats in raw_dir.glob(f"*{STATS_SUFFIX}"):
        shutil.copyfile(stats, attempt / stats.name)
        seeded.add(stats.name[: -len(STATS_SUFFIX)])
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            harvest(attempt, raw_dir, seeded)

    thread = threading.Thread(target=loop, name="curate-harvest", daemon=True)
    marker = f"{ATTEMPT_ENV}={attempt.resolve()}"
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, marker],
        stdin=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != ATTEMPT_ENV},
    )
    # Python's multiprocessing resource tracker is started once per process, lazily by img2dataset's first
    # semaphore. Started here, before the marker is set, it does not inherit it and survives the attempt's
    # cleanup; killed with the workers, it was relaunched empty and printed a KeyError traceback for every
    # semaphore img2dataset released afterwards (seen in `make filter`).
    resource_tracker.ensure_running()
    previous = os.environ.get(ATTEMPT_ENV)
    os.environ[ATTEMPT_ENV] = str(attempt.resolve())  # inherited by img2dataset's workers: findable later
    thread.start()
    try:
        yield attempt
    finally:
        stop.set()
        thread.join()
        if previous is None:
            os.environ.pop(ATTEMPT_ENV, None)
        else:
            os.environ[ATTEMPT_ENV] = previous
        watchdog.stdin.close()  # as our death would: img2dataset's leftover processes (its logger) go too
        watchdog.wait(timeout=30)
    harvest(attempt, raw_dir, seeded)
    shutil.rmtree(attempt, ignore_errors=True)
