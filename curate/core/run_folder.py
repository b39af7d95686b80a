"""One output folder holds one run of one command (filter, build, ocr, mix, train), with one lifecycle (issue 15):

- an exclusive lock (`.<name>.lock` beside the folder), so a second process on the same folder fails fast;
- an identity (config + input files + model files) in `run.json`, with the command that wrote the folder;
- resume when the identity matches, refuse (naming what changed) when it does not, `--overwrite` to start over;
- chunk done-markers under `_chunks/<stage>/`, each holding the counters of its chunk;
- `config.yaml` (the resolved config), `stats.json`, and `_SUCCESS` written last;
- `logs/<command>.log`: what Ray and img2dataset printed (on the terminal instead with --verbose).

`curate inspect` and `curate validate` read `run.json` to know what a folder holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate import __version__
from curate.core.atomic import remove_stale_tmp, write_bytes_atomic
from curate.core.errors import ConfigError
from curate.core.log import tool_output
from curate.core.storage import portable, release_mirror, remove_tree, sync_mirror

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
SUCCESS_FILE = "_SUCCESS"
STATS_FILE = "stats.json"
CONFIG_FILE = "config.yaml"
CHUNKS_DIR = "_chunks"
LOGS_DIR = "logs"  # the tools' output (Ray, img2dataset), one file per command
IDENTITY_KEYS = ("config", "input", "models")
COMMANDS = ("filter", "build", "ocr", "mix", "train")


@dataclass(frozen=True)
class RunFolder:
    """An opened run folder: where it is, which command owns it, and whether an earlier attempt is resumed."""

    path: Path
    command: str
    resumed: bool

    def marker(self, stage: str, chunk: int) -> Path:
        return self.path / CHUNKS_DIR / stage / f"chunk-{chunk:06d}.json"

    def mark_done(self, stage: str, chunk: int, info: dict[str, Any]) -> None:
        """Chunk `chunk` of `stage` is done; `info` holds its counters (read back by `markers`)."""
        write_bytes_atomic(self.marker(stage, chunk), json.dumps(info, sort_keys=True).encode())

    def markers(self, stage: str) -> dict[int, dict[str, Any]]:
        """{chunk: counters} of every finished chunk of `stage`."""
        folder = self.path / CHUNKS_DIR / stage
        found = sorted(folder.glob("chunk-*.json")) if folder.is_dir() else []
        return {int(p.stem.removeprefix("chunk-")): json.loads(p.read_text()) for p in found}

    def pending(self, stage: str, chunks: Iterable[int]) -> list[int]:
        done = self.markers(stage)
        return [c for c in chunks if c not in done]

    def write_stats(self, stats: dict[str, Any]) -> None:
        write_bytes_atomic(self.path / STATS_FILE, json.dumps(stats, indent=2, ensure_ascii=False).encode())

    def read_stats(self) -> dict[str, Any]:
        return json.loads((self.path / STATS_FILE).read_text())

    @property
    def complete(self) -> bool:
        return (self.path / SUCCESS_FILE).exists()

    def mark_complete(self) -> None:
        """`_SUCCESS`, written last; a run on object storage uploads everything else first, then drops its local
        working folder (curate.core.storage)."""
        mirrored = sync_mirror(self.path)
        write_bytes_atomic(self.path / SUCCESS_FILE, b"")
        if mirrored:
            release_mirror(self.path)

    def finish(self, stats: dict[str, Any], scratch: tuple[str, ...] = ()) -> None:
        """stats.json, then the run's scratch folders (chunk markers and `scratch`) deleted, then `_SUCCESS`."""
        self.write_stats(stats)
        for name in (CHUNKS_DIR, *scratch):
            remove_tree(self.path / name)
        self.mark_complete()


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run in `out` for the block: a second process on the same folder fails fast.

    The lock file sits beside the folder (`.<name>.lock`), since --overwrite deletes the folder itself. The kernel
    drops the lock when the holder dies, kill -9 included; child processes do not inherit it."""
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


@contextmanager
def open_run(
    out: Path, command: str, identity: dict[str, str], resolved_config: dict[str, Any], config_yaml: str, *,
    overwrite: bool,
) -> Iterator[RunFolder]:  # fmt: skip
    """Lock `out` and prepare it (create, resume or refuse) for the block. What the tools underneath print goes to
    `logs/<command>.log` in it unless --verbose (curate.core.log.tool_output)."""
    with exclusive(out):
        run = prepare(out, command, identity, resolved_config, config_yaml, overwrite=overwrite)
        with tool_output(out / LOGS_DIR / f"{command}.log"):
            yield run


def prepare(
    out: Path, command: str, identity: dict[str, str], resolved_config: dict[str, Any], config_yaml: str, *,
    overwrite: bool,
) -> RunFolder:  # fmt: skip
    """Create or reopen `out` for `command`. The caller holds the lock (`exclusive`), or is the only process."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    identity = {k: identity.get(k, "") for k in IDENTITY_KEYS}
    if overwrite:
        log.info("--overwrite: deleting %s", out)
        remove_tree(out)
    run_file = out / RUN_FILE
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous.get("command", command) != command:
            raise ConfigError(
                f"{out} holds the output of `curate {previous['command']}`, not of `curate {command}`; use "
                "--out DIR for a new run, or --overwrite to delete it"
            )
        if {k: previous.get(k, "") for k in IDENTITY_KEYS} != identity:
            raise ConfigError(_mismatch_message(out, previous, identity, resolved_config))
        stale = remove_stale_tmp(out)
        log.info("resuming the run in %s (%d stale temp files removed)", out, stale)
        write_bytes_atomic(out / CONFIG_FILE, config_yaml.encode())
        return RunFolder(out, command, resumed=True)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a curate {command} run; choose another --out or use --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command,
        **identity,
        "curate_version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resolved_config": resolved_config,
    }
    write_bytes_atomic(run_file, json.dumps(record, indent=2, ensure_ascii=False).encode())
    write_bytes_atomic(out / CONFIG_FILE, config_yaml.encode())
    return RunFolder(out, command, resumed=False)


def read_run(path: Path) -> dict[str, Any] | None:
    """The run.json of a curate output folder, or None when `path` is not one."""
    run_file = path / RUN_FILE
    if not run_file.is_file():
        return None
    try:
        return json.loads(run_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _mismatch_message(out: Path, previous: dict, identity: dict, resolved: dict) -> str:
    what = "configuration"
    if previous.get("config") == identity["config"]:
        what = "input data" if previous.get("input", "") != identity["input"] else "model weights"
    changed = _changed_keys(previous.get("resolved_config") or {}, resolved)
    detail = f" (changed: {', '.join(changed[:8])})" if changed and what == "configuration" else ""
    return (
        f"{out} holds a run with a different {what}{detail}. Refusing to mix two runs: use --out DIR for a "
        f"new run, or --overwrite to delete the old one."
    )


def _changed_keys(old: object, new: object, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [k for i, (a, b) in enumerate(zip(old, new, strict=True)) for k in _changed_keys(a, b, f"{prefix}{i}.")]
    return [] if old == new else [prefix.rstrip(".")]


# ---------------------------------------------------------------------------------------------- identity


def file_digest(path: Path, edge: int = 1 << 20) -> bytes:
    """Size plus the first and last MiB: cheap on multi-GB files, and changes whenever they are rewritten."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(edge)
        f.seek(max(0, size - edge))
        tail = f.read(edge)
    return hashlib.sha256(str(size).encode() + head + tail).digest()


def paths_digest(paths: Iterable[str | Path]) -> str:
    """One hash over files (size + head/tail) and folders (every file's relative name and size)."""
    digest = hashlib.sha256()
    for raw in paths:
        path = Path(raw)
        digest.update(str(portable(str(raw))).encode())
        if path.is_file():
            digest.update(file_digest(path))
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    child = Path(root) / name
                    if name.startswith(".") and name.endswith(".lock"):
                        continue
                    digest.update(f"{child.relative_to(path)}:{child.stat().st_size}".encode())
    return digest.hexdigest()[:16]
