"""P3: curate's download stage vs plain img2dataset, same URL list, same settings, same loopback server.

curate's stage is img2dataset plus what it adds (URL policy, guarded fetch, attempt folders, harvester,
watchdog); the baseline is the identical img2dataset call without any of it."""

from __future__ import annotations

import importlib
import logging
import math
import shutil
import signal
import time
from pathlib import Path
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.commands.bench.report import Figure
from curate.commands.filter.config import FilterRunConfig
from curate.commands.filter.config import load as load_filter
from curate.core.errors import ConfigError
from curate.demo.make import repeat_rows
from curate.download import call as img2dataset_call
from curate.download import stage as download
from curate.download.http_server import serve_directory
from curate.ledger.inputs import chunk_rows, read_input

log = logging.getLogger(__name__)


def url_run(filter_config: str, overrides: tuple[str, ...], urls: int, work: Path) -> FilterRunConfig:
    """The filter config with its demo URL list cycled to `urls` rows (every row its own download)."""
    base = load_filter(filter_config, overrides)
    url_list = base.input.url_list
    if url_list is None or not url_list.serve_dir:
        raise ConfigError(f"bench: {filter_config} must read a url_list with serve_dir (a local server is measured)")
    listed = repeat_rows(Path(url_list.path).parent, urls, work / "urls.parquet")
    return load_filter(filter_config, [*overrides, f"input.url_list.path={listed}", f"output.dir={work / 'run'}"])


def bench_download(cfg: FilterRunConfig, work: Path) -> tuple[Figure, pa.Table]:
    """The figure, and the downloaded rows (raw-table columns) that decoded: P1's and the peer's input."""
    rows = read_input(cfg.input)
    per_chunk = cfg.input.rows_per_chunk
    num_chunks = math.ceil(rows.num_rows / per_chunk)
    plain_dir, curate_dir = work / "img2dataset", work / "raw"
    assert cfg.input.url_list is not None and cfg.input.url_list.serve_dir
    with serve_directory(cfg.input.url_list.serve_dir) as base_url:
        shutil.rmtree(plain_dir, ignore_errors=True)
        plain_urls = _absolute_url_file(rows, base_url, work / "plain_urls.parquet")
        log.info("P3: plain img2dataset on %d URLs", rows.num_rows)
        started = time.perf_counter()
        _plain_img2dataset(plain_urls, plain_dir, cfg, per_chunk, num_chunks)
        plain_s = time.perf_counter() - started
        shutil.rmtree(curate_dir, ignore_errors=True)
        log.info("P3: curate's download stage on the same %d URLs", rows.num_rows)
        started = time.perf_counter()
        download.download(rows, curate_dir, cfg.download, per_chunk, base_url)
        curate_s = time.perf_counter() - started
    raw = pa.concat_tables(
        [download.raw_chunk_table(chunk_rows(rows, c), curate_dir, c, num_chunks) for c in range(num_chunks)]
    )
    ok_plain, ok_curate = _successes(plain_dir), pc.sum(pc.is_null(raw.column("reject_reason"))).as_py()
    figure = Figure(
        part="P3",
        measure=f"download, {rows.num_rows} URLs from 127.0.0.1",
        value=rows.num_rows / curate_s,
        unit="URLs/s",
        baseline=rows.num_rows / plain_s,
        baseline_name="plain img2dataset",
        goal=0.8,
        details={
            "urls": rows.num_rows,
            "curate_s": round(curate_s, 2),
            "img2dataset_s": round(plain_s, 2),
            "images_curate": ok_curate,
            "images_img2dataset": ok_plain,
            "processes": cfg.download.processes,
            "threads": cfg.download.threads,
            "image_size": cfg.download.image_size,
            "order": "img2dataset first, then curate",
        },
    )
    if ok_plain != ok_curate:
        figure.note = f"images downloaded differ: curate {ok_curate}, img2dataset {ok_plain}"
    return figure, raw.filter(pc.is_null(raw.column("reject_reason")))


def _absolute_url_file(rows: pa.Table, base_url: str, path: Path) -> Path:
    urls = [urljoin(base_url, u) if u and "://" not in u else u for u in rows.column("url").to_pylist()]
    pq.write_table(pa.table({"url": pa.array(urls, pa.string()), "row_id": rows.column("row_id")}), path)
    return path


def _plain_img2dataset(url_file: Path, out: Path, cfg: FilterRunConfig, per_chunk: int, num_chunks: int) -> None:
    """img2dataset exactly as curate calls it (img2dataset_call.run_img2dataset), without curate's guards."""
    from img2dataset import download as img2dataset_download

    main = importlib.import_module("img2dataset.main")
    assert main.Downloader.__module__.startswith("img2dataset"), "curate's downloader is still patched in"
    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        img2dataset_call.run_img2dataset(
            img2dataset_download, url_file, out, cfg.download, rows_per_chunk=per_chunk, num_chunks=num_chunks
        )
    finally:  # img2dataset installs a SIGINT handler that exits with status 0
        signal.signal(signal.SIGINT, previous_sigint)


def _successes(folder: Path) -> int:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return 0
    status = pa.concat_tables([pq.read_table(f, columns=["status"]) for f in files]).column("status")
    return pc.sum(pc.equal(status, "success")).as_py() or 0
