"""Download url_list inputs with img2dataset (its Python API, webdataset output) and map its per-sample
status / error_message to our reject reasons. One img2dataset shard = one chunk of our input."""

from __future__ import annotations

import logging
import math
import os
import signal
from pathlib import Path
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.parquet as pq

from curate.config import DownloadConfig
from curate.io.atomic import write_parquet_atomic

log = logging.getLogger(__name__)

# (substring of img2dataset's error_message, reason); first match wins. Messages come from urllib/http.client.
DOWNLOAD_ERRORS = (
    ("HTTP Error 404", "download:not_found"),
    ("HTTP Error 410", "download:not_found"),
    ("HTTP Error", "download:http_error"),
    ("X-Robots-Tag", "download:disallowed"),
    ("timed out", "download:timeout"),
    ("unknown url type", "download:invalid_url"),
    ("no host given", "download:invalid_url"),
    ("Invalid URL", "download:invalid_url"),
    ("NoneType", "download:invalid_url"),
    ("Connection refused", "download:connection_error"),
    ("Connection reset", "download:connection_error"),
    ("Remote end closed", "download:connection_error"),
    ("Name or service not known", "download:connection_error"),
    ("urlopen error", "download:connection_error"),
)


def download_reason(status: str | None, error_message: str | None) -> str | None:
    """Our reject reason for one img2dataset result row (None = downloaded and decoded)."""
    if status == "success":
        return None
    if status == "failed_to_resize":  # img2dataset decodes while resizing: failure = bytes are no image
        return "image:decode_error"
    if status == "failed_to_download":
        message = error_message or ""
        for needle, reason in DOWNLOAD_ERRORS:
            if needle in message:
                return reason
    return "download:error"


def shard_name(chunk: int, num_chunks: int) -> str:
    return f"{chunk:0{_oom_shard_count(num_chunks)}d}"


def _oom_shard_count(num_chunks: int) -> int:
    return max(5, math.ceil(math.log10(max(num_chunks, 1) + 1)))


def missing_chunks(raw_dir: Path, chunks: list[int], num_chunks: int) -> list[int]:
    """Chunks img2dataset has not finished (its {shard}_stats.json is written last)."""
    return [c for c in chunks if not (raw_dir / f"{shard_name(c, num_chunks)}_stats.json").exists()]


def download(rows: pa.Table, raw_dir: Path, cfg: DownloadConfig, rows_per_chunk: int, base_url: str | None) -> None:
    """Run img2dataset over all input rows; shards already finished are skipped (incremental mode)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download as img2dataset_download

    raw_dir.mkdir(parents=True, exist_ok=True)
    urls = rows.column("url").to_pylist()
    if base_url:  # relative entries of a served folder resolve against the loopback server
        urls = [urljoin(base_url, u) if u and "://" not in u else u for u in urls]
    url_file = raw_dir / "_urls.parquet"
    write_parquet_atomic(
        url_file, pa.table({"url": pa.array([u or "" for u in urls], pa.string()), "row_id": rows.column("row_id")})
    )
    num_chunks = math.ceil(rows.num_rows / rows_per_chunk)
    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        img2dataset_download(
            url_list=str(url_file),
            input_format="parquet",
            url_col="url",
            save_additional_columns=["row_id"],
            output_folder=str(raw_dir),
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
    finally:
        # img2dataset installs a SIGINT handler that exits with status 0; restore ours so Ctrl-C still fails.
        signal.signal(signal.SIGINT, previous_sigint)


def raw_chunk_table(rows: pa.Table, raw_dir: Path, chunk: int, num_chunks: int) -> pa.Table:
    """Input rows of one chunk joined with img2dataset's results: status, reason, size, where the bytes are."""
    name = shard_name(chunk, num_chunks)
    meta_path = raw_dir / f"{name}.parquet"
    meta = pq.read_table(meta_path) if meta_path.exists() else None
    by_row: dict[int, dict] = {}
    if meta is not None:
        for rec in meta.select(
            ["row_id", "key", "status", "error_message", "width", "height", "original_width", "original_height"]
        ).to_pylist():
            by_row[rec["row_id"]] = rec
    tar_path = str((raw_dir / f"{name}.tar").resolve())
    columns: dict[str, list] = {
        k: []
        for k in ("download_status", "error_message", "width", "height", "image_path", "image_member", "reject_reason")
    }
    for row_id in rows.column("row_id").to_pylist():
        rec = by_row.get(row_id)
        if rec is None:
            _append(
                columns,
                None,
                "img2dataset produced no result for this row",
                None,
                None,
                None,
                None,
                "download:missing",
            )
            continue
        reason = download_reason(rec["status"], rec["error_message"])
        ok = reason is None
        _append(
            columns,
            rec["status"],
            rec["error_message"],
            (rec["original_width"] or rec["width"]) if ok else None,
            (rec["original_height"] or rec["height"]) if ok else None,
            tar_path if ok else None,
            f"{rec['key']}.jpg" if ok else None,
            reason,
        )
    extra = pa.table(
        {
            "download_status": pa.array(columns["download_status"], pa.string()),
            "error_message": pa.array(columns["error_message"], pa.string()),
            "width": pa.array(columns["width"], pa.int32()),
            "height": pa.array(columns["height"], pa.int32()),
            "image_path": pa.array(columns["image_path"], pa.string()),
            "image_member": pa.array(columns["image_member"], pa.string()),
            "reject_reason": pa.array(columns["reject_reason"], pa.string()),
        }
    )
    for column in extra.column_names:
        rows = rows.append_column(column, extra.column(column))
    return rows


def _append(columns: dict[str, list], *values: object) -> None:
    for column, value in zip(columns, values, strict=True):
        columns[column].append(value)
