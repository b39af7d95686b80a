"""P4: synthetic OCR documents/s per core through `curate build` (a `synthdog` source on one Ray worker: rendering,
the OCR builder, format checks, spool and shards) vs the bare renderer called in this process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from curate.commands.bench.report import Figure
from curate.core.config import build_dataclass, read_yaml
from curate.sources.synthdog import Synthdog, renderer

log = logging.getLogger(__name__)


def synthdog_source(config_path: str) -> dict:
    """The `synthdog` entry of a build config, as plain data."""
    for entry in read_yaml(config_path, ()).get("sources") or []:
        if isinstance(entry, dict) and "synthdog" in entry:
            return dict(entry["synthdog"] or {})
    raise ValueError(f"{config_path} has no synthdog source")


def bench_ocr(config_path: str, documents: int, work: Path) -> Figure:
    fields = {**synthdog_source(config_path), "count": documents}
    source = build_dataclass(Synthdog, fields, "bench P4")
    log.info("P4: bare renderer, the same %d documents in-process", documents)
    render = renderer(source)
    render.render(source.seed, 0)  # warm: fonts and backgrounds load lazily (curate's rate skips start-up too)
    started = time.perf_counter()
    for i in range(1, documents):
        render.render(source.seed, i)
    raw = (documents - 1) / (time.perf_counter() - started) if documents > 1 else float("nan")
    log.info("P4: curate build (synthdog), %d documents on one worker", documents)
    out = work / "ocr"
    sets = [f"sources.synthdog.count={documents}", "ray.num_cpus=1", f"output.dir={out}"]
    command = [sys.executable, "-m", "curate", "--log-level", "WARNING", "build", config_path, "--overwrite"]
    command += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench P4: curate build failed:\n{proc.stderr.decode()[-2000:]}")
    stats = json.loads((out / "stats.json").read_text())
    return Figure(
        part="P4",
        measure=f"OCR rendering (en+zh), {documents} documents, 1 worker",
        value=stats["records"] / stats["worker_s"],  # rendering, building and writing inside the worker
        unit="docs/s/core",
        baseline=raw,
        baseline_name="bare renderer in-process",
        details={"documents": documents, "elapsed_s": stats["elapsed_s"], "samples": stats["tasks"]["ocr"]["samples"]},
    )
