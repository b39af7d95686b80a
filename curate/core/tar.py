"""Tar members with fixed metadata, so the same samples always give byte-identical shards.

Member names are checked: a shard must never hold a name that a plain `tar -x` would write outside the folder
it is extracted into (issue 8). curate itself never extracts tars to disk: readers take members into memory.

`TarWriter` writes the same bytes as Python's `tarfile` in USTAR format with these fixed fields (a test checks
it), at a small fraction of its cost per member, and says where each member starts, so shards can later be
cut by copying byte ranges (curate.core.chunks).
"""

from __future__ import annotations

import io
import re
import tarfile
from typing import BinaryIO

SAFE_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # one path part, no leading dot: no "..", no hidden
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")  # parts joined by "/"
BLOCK, RECORD = tarfile.BLOCKSIZE, tarfile.RECORDSIZE
_HEAD = b"0000644\x00" + b"0000000\x00" * 2  # mode, uid, gid
_MTIME = b"00000000000\x00"
_ZEROS = bytes(BLOCK)
_TAIL = b"0" + b"\x00" * 100 + tarfile.POSIX_MAGIC + b"\x00" * (32 + 32 + 8 + 8 + 155 + 12)  # type, linkname, ...
_FIXED_SUM = sum(_HEAD) + sum(_MTIME) + sum(b"        ") + sum(_TAIL)


def check_member_name(name: str) -> str:
    """`name` if it is a safe relative member name (parts joined by '/'), else ValueError."""
    if len(name) > 100 or not SAFE_NAME.fullmatch(name):  # ASCII only, so characters are bytes
        raise ValueError(f"unsafe tar member name {name!r}: only relative [A-Za-z0-9_.-] parts, at most 100 bytes")
    return name


def member_header(name: str, size: int) -> bytes:
    """The 512-byte USTAR header of a regular file: mode 644, uid/gid 0, mtime 0, no user or group names."""
    raw = check_member_name(name).encode("ascii")
    size_field = b"%011o\x00" % size
    checksum = _FIXED_SUM + sum(raw) + sum(size_field)  # the header's byte sum, checksum field as 8 spaces
    return raw + _ZEROS[: 100 - len(raw)] + _HEAD + size_field + _MTIME + b"%06o\x00 " % checksum + _TAIL


class TarWriter:
    """Appends members to a binary file; `offset` is where the next member's header goes."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.offset = file, 0

    def add(self, name: str, data: bytes) -> None:
        pad = -len(data) % BLOCK
        self.file.write(member_header(name, len(data)))
        self.file.write(data)
        self.file.write(_ZEROS[:pad])
        self.offset += BLOCK + len(data) + pad

    def add_raw(self, data: bytes) -> None:
        """Whole members copied from another of our tars (headers and padding included)."""
        self.file.write(data)
        self.offset += len(data)

    def close(self) -> None:
        """The end of the archive as tarfile writes it: two zero blocks, then zeros up to a whole record."""
        end = 2 * BLOCK
        end += -(self.offset + end) % RECORD
        self.file.write(b"\x00" * end)
        self.offset += end


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A member added through `tarfile` (tests and tools that hold a TarFile); the same bytes as TarWriter."""
    info = tarfile.TarInfo(check_member_name(name))
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    tar.addfile(info, io.BytesIO(data))
