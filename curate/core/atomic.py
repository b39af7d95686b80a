"""Atomic file writes: write under a temporary name in the same folder, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.storage import publish

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp_path), fsync, then rename to `path`; a crash never leaves a partial `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        publish(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def remove_stale_tmp(folder: Path) -> int:
    """Delete temp files a killed run left behind; returns how many."""
    stale = list(folder.rglob(f"*{TMP_SUFFIX}")) if folder.exists() else []
    for path in stale:
        path.unlink()
    return len(stale)
