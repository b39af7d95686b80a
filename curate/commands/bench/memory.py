"""P5: peak memory of whole `curate filter` runs (download, Ray, CLIP, shards) at two sizes, every process of
the run's tree sampled (curate.core.process_memory). The ratio is the growth from the small run to the large one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from curate.commands.bench.report import Figure
from curate.core.process_memory import TreeMemory
from curate.demo.make import repeat_rows

log = logging.getLogger(__name__)


def peak_of_run(filter_config: str, overrides: tuple[str, ...], demo_dir: Path, rows: int, work: Path) -> dict:
    urls = repeat_rows(demo_dir, rows, work / f"urls_{rows}.parquet")
    out = work / f"run_{rows}"
    command = [sys.executable, "-m", "curate", "--log-level", "WARNING", "filter", filter_config, "--overwrite"]
    for item in (*overrides, f"input.url_list.path={urls}"):
        command += ["--set", item]
    command += ["--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    log.info("P5: curate filter on %d rows", rows)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with TreeMemory(proc.pid, every_s=0.25) as memory:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench P5: curate filter on {rows} rows failed:\n{err.decode()[-2000:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {"rows": rows, **memory.as_dict(), "elapsed_s": stats["elapsed_s"], "kept": stats["kept_rows"]}


def bench_memory(
    filter_config: str, overrides: tuple[str, ...], demo_dir: Path, sizes: tuple[int, ...], work: Path
) -> list[Figure]:
    small, large = (peak_of_run(filter_config, overrides, demo_dir, n, work) for n in (min(sizes), max(sizes)))
    figures = []
    for key, what in (("peak_pss_gib", "PSS"), ("peak_rss_gib", "RSS summed")):
        figures.append(
            Figure(
                part="P5",
                measure=f"peak {what} of a filter run, {large['rows']:,} vs {small['rows']:,} rows",
                value=large[key],
                unit="GiB",
                baseline=small[key],
                baseline_name=f"GiB at {small['rows']:,} rows",
                details={"small": small, "large": large},
            )
        )
    return figures
