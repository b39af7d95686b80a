"""Tar members with fixed metadata, so the same samples always give byte-identical shards.

Member names are checked: a shard must never hold a name that a plain `tar -x` would write outside the folder
it is extracted into (issue 8). curate itself never extracts tars to disk: readers take members into memory.
"""

from __future__ import annotations

import io
import re
import tarfile

SAFE_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # one path part, no leading dot: no "..", no hidden


def check_member_name(name: str) -> str:
    """`name` if it is a safe relative member name (parts joined by '/'), else ValueError."""
    parts = name.split("/")
    if not name or len(name.encode()) > 100 or not all(SAFE_MEMBER.fullmatch(p) for p in parts):
        raise ValueError(f"unsafe tar member name {name!r}: only relative [A-Za-z0-9_.-] parts, at most 100 bytes")
    return name


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(check_member_name(name))
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    tar.addfile(info, io.BytesIO(data))
