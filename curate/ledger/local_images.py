"""Already-local images: raw rows point at the files; a Ray stage probes their size and decodability."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa

from curate.core.images import probe
from curate.filters.base import conform

LOCAL_STATUS = "local"


def raw_local_table(rows: pa.Table) -> pa.Table:
    """Input rows plus the raw columns, with image_path taken from the file:// URL."""
    n = rows.num_rows
    paths = [unquote(urlparse(u).path) if u else None for u in rows.column("url").to_pylist()]
    extra = {
        "download_status": pa.array([LOCAL_STATUS] * n, pa.string()),
        "error_message": pa.nulls(n, pa.string()),
        "width": pa.nulls(n, pa.int32()),
        "height": pa.nulls(n, pa.int32()),
        "image_path": pa.array(paths, pa.string()),
        "image_member": pa.nulls(n, pa.string()),
        "reject_reason": pa.nulls(n, pa.string()),
    }
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    return rows


def probe_local_images(batch: pd.DataFrame) -> pd.DataFrame:
    """Fill width/height of local images, or reject with image:not_found / image:decode_error."""
    batch = batch.copy()
    for column in ("width", "height", "reject_reason", "error_message"):
        batch[column] = batch[column].astype(object)
    todo = (batch["download_status"] == LOCAL_STATUS) & batch["reject_reason"].isna()
    for idx in batch.index[todo]:
        path = batch.at[idx, "image_path"]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as err:
            batch.at[idx, "reject_reason"] = "image:not_found"
            batch.at[idx, "error_message"] = str(err)
            continue
        try:
            batch.at[idx, "width"], batch.at[idx, "height"] = probe(data)
        except Exception as err:  # noqa: BLE001 - any decoder failure is bad data
            batch.at[idx, "reject_reason"] = "image:decode_error"
            batch.at[idx, "error_message"] = f"{type(err).__name__}: {err}"[:500]
    return conform(batch)
