"""P2: the model-free filters and the language filter over 100k LAION-style rows, rows/s per core.

The baseline is the same filters' code called in this process on one core, with no Ray: the ratio is what
the pipeline keeps of it per core (task scheduling, Arrow <-> pandas, transfer to the driver)."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.commands.bench.report import Figure
from curate.commands.filter.config import FilterRunConfig
from curate.filters.base import Filter, FilterChain
from curate.ledger.inputs import InputConfig

log = logging.getLogger(__name__)
REPEATS = 3


def laion_rows(captions: list[str | None], rows: int, per_chunk: int, seed: int = 0) -> pa.Table:
    """Rows as the download stage leaves them: input captions cycled, image sizes drawn log-uniformly from
    32 to 4096 px per side (LAION's sizes span that range), every row alive."""
    rng = np.random.default_rng(seed)
    sides = np.exp(rng.uniform(np.log(32), np.log(4096), size=(2, rows))).astype(np.int32)
    index = np.arange(rows)
    return pa.table(
        {
            "key": pa.array([f"{i:09d}" for i in index], pa.string()),
            "row_id": pa.array(index, pa.int64()),
            "chunk": pa.array(index // per_chunk, pa.int32()),
            "caption_raw": pa.array([captions[i % len(captions)] for i in index], pa.string()),
            "width": pa.array(sides[0]),
            "height": pa.array(sides[1]),
            "reject_reason": pa.nulls(rows, pa.string()),
        }
    )


def model_free(cfg: FilterRunConfig) -> list[Filter]:
    """The filters P2 measures: every configured filter but CLIP (size, aspect, text rules, language)."""
    return [f for f in cfg.filters if not f.uses_model and not f.skip]


def in_process(filters: list[Filter], rows: pa.Table) -> tuple[float, dict[str, float]]:
    """Rows/s of the whole chain on one core, and of each filter on the rows it sees."""
    import pickle

    filters = pickle.loads(pickle.dumps(filters))  # fresh copies: setup() state must not travel to Ray later
    batch, each = rows.to_pandas(), {}
    started = time.perf_counter()
    for f in filters:
        t = time.perf_counter()
        batch = f.apply(batch)
        each[f.name] = rows.num_rows / (time.perf_counter() - t)
    FilterChain([])(batch)  # the chain conforms dtypes once at its end: part of its cost
    return rows.num_rows / (time.perf_counter() - started), each


def through_ray(filters: list[Filter], rows: pa.Table, per_chunk: int, batch_rows: int) -> float:
    from curate.filters.plan import build_dataset

    parts = [rows.slice(i, per_chunk) for i in range(0, rows.num_rows, per_chunk)]
    started = time.perf_counter()
    seen = sum(
        b.num_rows
        for b in build_dataset(parts, filters, local=False, batch_rows=batch_rows).iter_batches(
            batch_format="pyarrow", batch_size=None
        )
    )
    elapsed = time.perf_counter() - started
    if seen != rows.num_rows:
        raise RuntimeError(f"bench P2: {seen} of {rows.num_rows} rows came back")
    return rows.num_rows / elapsed


def bench_metadata(cfg: FilterRunConfig, n: int, cores: int) -> Figure:
    assert cfg.input.url_list is not None
    captions = pq.read_table(cfg.input.url_list.path, columns=[cfg.input.url_list.caption_col]).column(0)
    # input.rows_per_chunk's default (10,000): the demo config's 200 suits its 600 rows, not 100k
    per_chunk = next(f.default for f in dataclasses.fields(InputConfig) if f.name == "rows_per_chunk")
    rows = laion_rows(captions.to_pylist(), n, per_chunk)
    filters = model_free(cfg)
    log.info("P2: %s on %d rows, in-process and through Ray on %d cores", ", ".join(f.name for f in filters), n, cores)
    chain, each = in_process(filters, rows)
    # Warm every worker (its imports, lid.176, the word list) with a whole run: a smaller one would leave the
    # workers its few tasks did not reach cold. Then the rate over REPEATS runs, each ~1 s on 2 cores.
    through_ray(filters, rows, per_chunk, cfg.ray.batch_rows)
    ray_rate = REPEATS / sum(1 / through_ray(filters, rows, per_chunk, cfg.ray.batch_rows) for _ in range(REPEATS))
    return Figure(
        part="P2",
        measure=f"metadata filters ({', '.join(f.name for f in filters)}), {n:,} rows",
        value=ray_rate / cores,
        unit="rows/s/core",
        baseline=chain,
        baseline_name="same filters in-process, 1 core",
        goal=0.75,  # issue 20
        details={
            "rows": n,
            "cores": cores,
            "pipeline_rows_per_s": round(ray_rate),
            "batch_rows": cfg.ray.batch_rows,
            "ray_runs": REPEATS,
            "per_filter_rows_per_s_1_core": {k: round(v) for k, v in each.items()},
        },
    )
