"""How curate calls img2dataset: its arguments for one download, and the shard names it writes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from curate.download.config import DownloadConfig


def shard_name(chunk: int, num_chunks: int) -> str:
    return f"{chunk:0{_oom_shard_count(num_chunks)}d}"


def _oom_shard_count(num_chunks: int) -> int:
    return max(5, math.ceil(math.log10(max(num_chunks, 1) + 1)))


def run_img2dataset(
    img2dataset_download: Any, url_file: Path, out: Path, cfg: DownloadConfig, *, rows_per_chunk: int, num_chunks: int
) -> None:
    img2dataset_download(
        url_list=str(url_file),
        input_format="parquet",
        url_col="url",
        save_additional_columns=["row_id"],
        output_folder=str(out),
        output_format="webdataset",
        number_sample_per_shard=rows_per_chunk,
        oom_shard_count=_oom_shard_count(num_chunks),
        image_size=cfg.image_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_quality=cfg.encode_quality,
        encode_format="jpg",
        processes_count=cfg.processes,
        thread_count=cfg.threads,
        timeout=cfg.timeout,
        retries=cfg.retries,
        distributor=cfg.distributor,
        incremental_mode="incremental",
        extract_exif=False,
        compute_hash=None,
        enable_wandb=False,
    )
