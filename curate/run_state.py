"""One output dir holds one run: resume it when the config and input match, refuse otherwise."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curate import __version__
from curate.config import FilterRunConfig, fingerprint, to_dict
from curate.errors import ConfigError
from curate.io.atomic import remove_stale_tmp, write_bytes_atomic
from curate.io.inputs import input_fingerprint

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
SUCCESS_FILE = "_SUCCESS"


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run in `out` for the block: a second process on the same dir fails fast.

    The lock file sits beside the dir (`.<name>.lock`), since --overwrite deletes the dir itself. The kernel
    drops the lock when the holder dies, kill -9 included; img2dataset's workers do not inherit it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{out} is in use by another curate process (pid {holder}); wait for it or stop it"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    try:
        yield
    finally:
        os.close(fd)


def prepare(cfg: FilterRunConfig, overwrite: bool) -> bool:
    """Create or reopen cfg.out_dir; returns True when an earlier run is being resumed."""
    out = cfg.out_dir
    identity = {"config": fingerprint(cfg), "input": input_fingerprint(cfg.input), "models": _models(cfg)}
    if overwrite and out.exists():
        log.info("--overwrite: deleting %s", out)
        shutil.rmtree(out)
    run_file = out / RUN_FILE
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if {k: previous.get(k) for k in identity} != identity:
            raise ConfigError(_mismatch_message(out, previous, identity, cfg))
        stale = remove_stale_tmp(out)
        log.info("resuming the run in %s (%d stale temp files removed)", out, stale)
        return True
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a curate filter run; choose another --out or use --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **identity,
        "curate_version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resolved_config": to_dict(cfg),
    }
    write_bytes_atomic(run_file, json.dumps(record, indent=2).encode())
    return False


def _mismatch_message(out: Path, previous: dict, identity: dict, cfg: FilterRunConfig) -> str:
    what = "configuration"
    if previous.get("config") == identity["config"]:
        what = "input data" if previous.get("input") != identity["input"] else "model weights"
    changed = _changed_keys(previous.get("resolved_config") or {}, to_dict(cfg))
    detail = f" (changed: {', '.join(changed[:8])})" if changed and what == "configuration" else ""
    return (
        f"{out} holds a run with a different {what}{detail}. Refusing to mix two runs: use --out DIR for a "
        f"new run, or --overwrite to delete the old one."
    )


def _models(cfg: FilterRunConfig) -> str:
    """Hash of the model files the filters load: retrained weights make a different run."""
    digest = hashlib.sha256()
    for f in cfg.filters:
        for path in f.artifacts():
            digest.update(f"{f.name}:{Path(path).name}".encode())
            if Path(path).is_file():
                digest.update(_file_digest(Path(path)))
    return digest.hexdigest()[:16]


def _file_digest(path: Path, edge: int = 1 << 20) -> bytes:
    """Size plus the first and last MiB: cheap on multi-GB checkpoints, changes whenever weights are retrained."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(edge)
        f.seek(max(0, size - edge))
        tail = f.read(edge)
    return hashlib.sha256(str(size).encode() + head + tail).digest()


def _changed_keys(old: object, new: object, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [k for i, (a, b) in enumerate(zip(old, new, strict=True)) for k in _changed_keys(a, b, f"{prefix}{i}.")]
    return [] if old == new else [prefix.rstrip(".")]


def is_complete(out: Path) -> bool:
    return (out / SUCCESS_FILE).exists()


def mark_complete(out: Path) -> None:
    write_bytes_atomic(out / SUCCESS_FILE, b"")
