"""Tar members with fixed metadata, so the same samples always give byte-identical shards."""

from __future__ import annotations

import io
import tarfile


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    tar.addfile(info, io.BytesIO(data))
