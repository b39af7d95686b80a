"""Download url_list inputs with img2dataset (its Python API, webdataset output) and map its per-sample
status / error_message to our reject reasons. One img2dataset shard = one chunk of our input."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic
from curate.download.attempt import attempt_dir
from curate.download.call import shard_name
from curate.download.config import DownloadConfig
from curate.download.job import DownloadJob, run_in_child
from curate.download.url_encoding import ENCODING_MARK, browser_url, encoding_failure
from curate.download.url_policy import REFUSED_MARK, refusal_message

log = logging.getLogger(__name__)
URL_FILE = "_urls.parquet"  # what img2dataset was given, plus why refused rows were not

# (substring of img2dataset's error_message, reason); first match wins. Messages come from urllib/http.client.
DOWNLOAD_ERRORS = (
    (REFUSED_MARK, "download:refused"),  # curate/download/url_policy.py, before the download or at connect time
    ("curate:deadline", "download:timeout"),  # curate/download/guarded_fetch.py: total time per image
    ("curate:too_large", "download:too_large"),
    ("infinite loop", "download:redirect_loop"),  # urllib: a redirect cycle or more than 10 hops
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
        return "image:too_large" if "MAX_IMAGE_PIXELS" in (error_message or "") else "image:decode_error"
    if status == "failed_to_download":
        message = error_message or ""
        for needle, reason in DOWNLOAD_ERRORS:
            if needle in message:
                return reason
    return "download:error"


def missing_chunks(raw_dir: Path, chunks: list[int], num_chunks: int) -> list[int]:
    """Chunks img2dataset has not finished (its {shard}_stats.json is written last)."""
    return [c for c in chunks if not (raw_dir / f"{shard_name(c, num_chunks)}_stats.json").exists()]


def download(
    rows: pa.Table,
    raw_dir: Path,
    cfg: DownloadConfig,
    rows_per_chunk: int,
    base_url: str | None,
    *,
    ray_address: str | None = None,
) -> None:
    """Run img2dataset over all input rows; shards already finished are skipped (incremental mode).

    URLs are encoded as browsers send them (curate/download/url_encoding.py). Refused URLs
    (curate/download/url_policy.py) and those that cannot be encoded are never handed to img2dataset;
    `_urls.parquet` keeps why.
    img2dataset runs in a child process (curate/download/job.py), so this process never imports it."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    urls = rows.column("url").to_pylist()
    if base_url:  # relative entries of a served folder resolve against the loopback server
        urls = [urljoin(base_url, u) if u and "://" not in u else u for u in urls]
    policy = cfg.policy()
    # Encoded as a browser sends it (issue 21); the ledger keeps the URL as the input wrote it
    unencodable = [encoding_failure(u) for u in urls]
    urls = [u if bad or not u else browser_url(u) for u, bad in zip(urls, unencodable, strict=True)]
    refused = [bad or policy.url_refusal(u) for u, bad in zip(urls, unencodable, strict=True)]
    write_parquet_atomic(
        raw_dir / URL_FILE,
        pa.table(
            {
                "url": pa.array(["" if r else (u or "") for u, r in zip(urls, refused, strict=True)], pa.string()),
                "row_id": rows.column("row_id"),
                "refused": pa.array(refused, pa.string()),
            }
        ),
    )
    num_chunks = math.ceil(rows.num_rows / rows_per_chunk)
    with attempt_dir(raw_dir) as attempt:
        run_in_child(
            DownloadJob(
                url_file=raw_dir / URL_FILE,
                out=attempt,
                cfg=cfg,
                rows_per_chunk=rows_per_chunk,
                num_chunks=num_chunks,
                ray_address=ray_address,
                log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                to_download=len(missing_chunks(raw_dir, list(range(num_chunks)), num_chunks)),
            )
        )


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
    refused = _refusals(raw_dir / URL_FILE, rows.column("row_id"))
    tar_path = str((raw_dir / f"{name}.tar").resolve())
    columns: dict[str, list] = {
        k: []
        for k in ("download_status", "error_message", "width", "height", "image_path", "image_member", "reject_reason")
    }
    for row_id in rows.column("row_id").to_pylist():
        rec = by_row.get(row_id)
        if row_id in refused:
            why = refused[row_id]
            if why.startswith(ENCODING_MARK):
                _append(columns, None, why, None, None, None, None, "download:bad_url")
            else:
                _append(columns, None, refusal_message(why), None, None, None, None, "download:refused")
            continue
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


def _refusals(url_file: Path, row_ids: pa.ChunkedArray) -> dict[int, str]:
    """row_id -> why the URL policy refused it, for the given rows."""
    if not url_file.exists():
        return {}
    table = pq.read_table(url_file, columns=["row_id", "refused"], filters=pc.is_valid(pc.field("refused")))
    table = table.filter(pc.is_in(table.column("row_id"), row_ids.combine_chunks()))
    return dict(zip(table.column("row_id").to_pylist(), table.column("refused").to_pylist(), strict=True))


def _append(columns: dict[str, list], *values: object) -> None:
    for column, value in zip(columns, values, strict=True):
        columns[column].append(value)
