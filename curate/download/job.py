"""The img2dataset call of a download, in a process of its own (`python -m curate.download.job`).

Why a process: importing img2dataset imports torch (through webdataset; a CUDA build here), and a Python
process never gives imported modules back. In the `curate filter` driver that was ~0.7 GiB of RSS held
for the whole filter phase, beside the CLIP worker's own torch (issue 8's 4 GiB bound failed in CI with the
driver at 1.4 GiB). The child starts inside the attempt (curate/download/attempt.py), so it inherits the
attempt marker: the watchdog kills it with img2dataset's workers when we die.

The parent sends the job pickled on stdin (our own processes on both ends) and reads only the exit status;
the child's logs go to the parent's stdout/stderr.

The child and img2dataset's workers (spawned: they re-import this module as `__mp_main__` before anything
else) also make torch unimportable. Nothing in them uses it: it came in through webdataset's optional PyTorch
datasets (`webdataset.pytorch` falls back to stand-ins on ModuleNotFoundError), and it cost each of them
~0.7 GiB of RSS and ~3 s of start-up (measured: 952 -> 278 MiB per process).
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

NO_TORCH = ("torch", "torchvision")
if __name__ in {"__main__", "__mp_main__"}:  # only in the download processes, never where curate is imported
    for _name in NO_TORCH:
        sys.modules.setdefault(_name, None)  # `import torch` now raises ModuleNotFoundError

from curate.core.images import MAX_IMAGE_PIXELS  # noqa: E402
from curate.download.config import DownloadConfig  # noqa: E402 - after the torch block, which must come first


@dataclass(frozen=True)
class DownloadJob:
    url_file: Path  # parquet with url and row_id; refused rows have an empty url
    out: Path  # the attempt folder img2dataset writes into
    cfg: DownloadConfig
    rows_per_chunk: int
    num_chunks: int
    ray_address: str | None = None  # a named cluster, for distributor: ray
    log_level: str = "INFO"  # the parent's
    to_download: int | None = None  # chunks not downloaded yet (the progress line's total)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    # OpenCV decodes in img2dataset without PIL's bomb check: cap the pixels it allocates (read from the
    # environment by every worker it spawns); past the cap imdecode raises and the row is image:too_large.
    env["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_IMAGE_PIXELS)
    return env


def run_in_child(job: DownloadJob) -> None:
    """Run `job` in a fresh interpreter; raises when it fails (its own output says why)."""
    from curate.core.log import progress, tool_log_hint, tool_log_tail

    proc = subprocess.Popen([sys.executable, "-m", "curate.download.job"], stdin=subprocess.PIPE, env=child_env())
    assert proc.stdin is not None
    proc.stdin.write(pickle.dumps(job))
    proc.stdin.close()

    # Progress by finished shards: img2dataset writes a shard's <shard>_stats.json when the shard is done
    # Shards finished now: stats files in the attempt folder or already harvested into raw/, less those that were
    # there before (the attempt folder starts with their copies)
    def finished() -> set[str]:
        return {p.name for folder in (job.out, job.out.parent) for p in folder.glob("*_stats.json")}

    before = finished()
    with progress(job.to_download or job.num_chunks, "download", unit="chunks") as bar:
        while proc.poll() is None:
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            bar.update(len(finished() - before) - bar.n)
    if proc.returncode != 0:
        tail = tool_log_tail()
        raise RuntimeError(
            f"the img2dataset download process failed with exit status {proc.returncode} ({tool_log_hint()})"
            + (f"; its last lines:\n{tail}" if tail else "")
        )


def run(job: DownloadJob) -> None:
    """img2dataset with curate's fetch guards (curate/download/guarded_fetch.py), in this process."""
    from img2dataset import download as img2dataset_download

    from curate.download.call import run_img2dataset
    from curate.download.guarded_fetch import FetchLimits, GuardedDownloader

    img2dataset_main = importlib.import_module("img2dataset.main")  # the module; the package exports a function
    cfg = job.cfg
    limits = FetchLimits(policy=cfg.policy(), deadline=float(cfg.deadline), max_bytes=cfg.max_image_bytes)
    # img2dataset builds its Downloader itself; ours is the same class plus the fetch guards.
    img2dataset_main.Downloader = functools.partial(GuardedDownloader, limits=limits)
    call = functools.partial(
        run_img2dataset,
        img2dataset_download,
        job.url_file,
        job.out,
        job.cfg,
        rows_per_chunk=job.rows_per_chunk,
        num_chunks=job.num_chunks,
    )
    if job.cfg.distributor != "ray":
        call()
        return
    from curate.core.ray_session import ray_session

    with ray_session(job.ray_address, None):  # img2dataset's ray distributor runs on this session
        call()


def main() -> int:
    from curate.core.log import setup_logging

    job = pickle.loads(sys.stdin.buffer.read())
    setup_logging(job.log_level)
    run(job)
    return 0


if __name__ == "__main__":  # img2dataset's multiprocessing workers re-import the main module under spawn
    sys.exit(main())
