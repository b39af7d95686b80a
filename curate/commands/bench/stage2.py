"""P6: stage 2 at corpus scale (issue 15). `curate build` throughput per core beside the same builders in a bare
in-process loop, and the peak memory of whole `curate build` / `curate mix` runs (every process of the tree,
curate.core.process_memory) at two input sizes and at a 1M-sample budget. The slow test
tests/test_stage2_memory.py runs the same measurement and asserts its bounds."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from curate.commands.bench.report import Figure
from curate.core.process_memory import TreeMemory

log = logging.getLogger(__name__)
IMAGE_SIDE = 256  # issue 15: synthetic images of 256 px or larger
ONLY_REF_GROUNDING = {t: 0 for t in ("caption", "vqa", "grounding", "grounded_caption", "ocr", "text")}


def shapes_source(count: int) -> dict[str, Any]:
    """One ref_grounding sample per image: the sample count equals the image count."""
    shapes = {"count": count, "size": IMAGE_SIDE, "min_objects": 1, "max_objects": 1, "seed": 0}
    return {"shapes": {**shapes, "tasks": ["ref_grounding"]}}


def _measured(command: list[str], what: str) -> tuple[TreeMemory, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with TreeMemory(proc.pid, every_s=0.25) as memory:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{err.decode()[-3000:]}")
    return memory, time.perf_counter() - started


def _memory(memory: TreeMemory) -> dict[str, Any]:
    """Peaks, and the biggest processes at the RSS peak."""
    figures = memory.as_dict()
    return {
        "peak_rss_gib": figures["peak_rss_gib"],
        "peak_pss_gib": figures["peak_pss_gib"],
        "peak_processes": figures["peak_processes"],
        "top": memory.breakdown().splitlines()[:6],
    }


def _curate(command: str, config: dict[str, Any], path: Path) -> tuple[TreeMemory, float]:
    path.write_text(yaml.safe_dump(config))
    args = [sys.executable, "-m", "curate", "--log-level", "WARNING", command, str(path), "--overwrite"]
    log.info("P6: curate %s %s", command, config["name"])
    return _measured(args, f"curate {command} {config['name']}")


def build_at(samples: int, work: Path) -> dict[str, Any]:
    """A `curate build` of `samples` shapes; its peak memory, wall time and stats."""
    out = work / f"build_{samples}"
    config = {
        "name": f"build_{samples}",
        "sources": [shapes_source(samples)],
        "records_per_chunk": 1000,
        "output": {"dir": str(out), "samples_per_shard": 1000},
    }
    memory, wall = _curate("build", config, work / f"build_{samples}.yaml")
    stats = json.loads((out / "stats.json").read_text())
    built = stats["tasks"]["ref_grounding"]["samples"]
    return {**_memory(memory), "samples": built, "wall_s": round(wall, 1), "stats": stats, "out": str(out)}


def mix_at(build: dict[str, Any], budget: int, work: Path, *, replace: bool) -> dict[str, Any]:
    """A `curate mix` of `budget` samples from one build (all ref_grounding); peak memory and wall time."""
    out = work / f"mix_{build['samples']}_{budget}"
    config = {
        "name": out.name,
        "inputs": [build["out"]],
        "budget": budget,
        "weights": {**ONLY_REF_GROUNDING, "ref_grounding": 1},
        "with_replacement": ["ref_grounding"] if replace else [],
        "sft": {"conversations": 0},
        "output": {"dir": str(out), "samples_per_shard": 200},
    }
    memory, wall = _curate("mix", config, work / f"{out.name}.yaml")
    stats = json.loads((out / "stats.json").read_text())
    shutil.rmtree(out)  # measured; a 1M-sample mixture is gigabytes of disk
    return {**_memory(memory), "budget": budget, "pool": build["samples"], "wall_s": round(wall, 1),
            "sequences": stats["sequences"], "packing_efficiency": stats["packing_efficiency"]}  # fmt: skip


def stage2_scale(
    work: Path,
    sizes: tuple[int, int] = (20_000, 100_000),
    big_budget: int = 1_000_000,
    after_builds: Callable[[], None] | None = None,
) -> dict:
    """Builds at both sizes, a mix of each with budget = size, and a `big_budget` mix with replacement from
    the larger build; `after_builds` runs between the builds and the mixes."""
    work.mkdir(parents=True, exist_ok=True)
    builds = [build_at(n, work) for n in sizes]
    if after_builds is not None:
        after_builds()
    mixes = [mix_at(b, b["samples"], work, replace=False) for b in builds]
    mixes.append(mix_at(builds[-1], big_budget, work, replace=True))
    for b in builds:
        shutil.rmtree(b["out"])  # measured and mixed; only the figures are kept
    return {"builds": builds, "mixes": mixes}


def bare_build_rate(samples: int) -> float:
    """Samples/s of the same source and builders in a bare loop in this process (one core, nothing written)."""
    from curate.core.images import TarReader
    from curate.sources import SOURCES
    from curate.tasks.build import build_records

    source = SOURCES["shapes"](**shapes_source(samples)["shapes"])
    started, built = time.perf_counter(), 0
    for task, item in build_records(source, source.records(), TarReader()):
        built += task is not None and isinstance(item, dict)
    return built / (time.perf_counter() - started)


def bench_stage2(work: Path, sizes: tuple[int, int], big_budget: int, bare_samples: int) -> list[Figure]:
    # The bare loop runs before and after the builds and counts as their mean: on a shared (virtual) machine the
    # speed of a core drifts by a few percent within minutes, which a single measurement before would put
    # entirely into the ratio.
    log.info("P6: bare build loop on %d samples, before and after the builds", bare_samples)
    bare = [bare_build_rate(bare_samples)]
    scale = stage2_scale(work, sizes, big_budget, after_builds=lambda: bare.append(bare_build_rate(bare_samples)))
    (small, large), mixes = scale["builds"], scale["mixes"]
    stats = large.pop("stats")
    small.pop("stats")
    rate = stats["tasks"]["ref_grounding"]["samples"] / stats["work_s"] / stats["workers"]
    figures = [
        Figure(
            part="P6",
            measure=f"curate build, {large['samples']:,} shapes at {IMAGE_SIDE} px, {stats['workers']} Ray workers",
            value=rate,
            unit="samples/s/core",
            baseline=sum(bare) / len(bare),
            baseline_name=f"the same builders in a bare loop ({bare_samples:,} samples, 1 core, before/after)",
            goal=0.8,
            note="chunks + shard cut, wall clock; Ray and worker start-up left out (wall_s has them)",
            details={"work_s": stats["work_s"], "wall_s": large["wall_s"], "bare_before_after": bare},
        ),
        Figure(
            part="P6",
            measure=f"peak RSS of curate build, {large['samples']:,} vs {small['samples']:,} samples",
            value=large["peak_rss_gib"],
            unit="GiB",
            baseline=small["peak_rss_gib"],
            baseline_name=f"GiB at {small['samples']:,}",
            details={"small": small, "large": large},
        ),
    ]
    for big, base in ((mixes[1], mixes[0]), (mixes[2], mixes[1])):
        figures.append(
            Figure(
                part="P6",
                measure=f"peak RSS of curate mix, budget {big['budget']:,} vs {base['budget']:,}",
                value=big["peak_rss_gib"],
                unit="GiB",
                baseline=base["peak_rss_gib"],
                baseline_name=f"GiB at budget {base['budget']:,}",
                note="issue 15 bound: ratio <= 1.3 (and < 3 GiB at 1M)",
                details={"large": big, "small": base},
            )
        )
    return figures
