"""Object storage (s3://, gs://, hf://, az://) for every command's inputs and outputs, through fsspec (issue 21).

Every storage URL in a config (and a URL argument of inspect, validate, export) gets a local *view* under the
staging root ($CURATE_STAGING, default ~/.cache/curate/staging) before the command starts (`localize`, `fetch`):
small files are copied (under a temp name, then renamed; skipped when already there with the same size), while
the bulk of another command's output (`shards/`, `parquet/`, `sft_images/`) stays in object storage and is read
in place through the one shard reader (`exists`, `open_read`, `glob`). Libraries that need a local file (the URL
list, img2dataset's served folder, torch.load) get one.

An `output.dir` on object storage runs in a local working folder of the same kind (`mirror`):
- opening it pulls the run's state (everything but the bulk), so a run killed on one machine resumes on another;
- every file the run publishes (`curate.core.atomic.write_atomic`, the renames of finished parts) is uploaded as
  soon as it is complete, in one PUT or one multipart upload: an object appears complete or not at all;
- the bulk (finished shards, and spool parts before they are cut) is then deleted locally, so neither piles up;
- `sync_mirror` (from `RunFolder.mark_complete`) uploads what is left, deletes the objects of files the run
  deleted, and `_SUCCESS` comes last; then the working folder goes (`release_mirror`).

Credentials and endpoints come from each library's standard environment: AWS_ENDPOINT_URL, AWS_PROFILE,
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (s3fs), GOOGLE_APPLICATION_CREDENTIALS (gcsfs), HF_TOKEN (hf://).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from curate.core.errors import ConfigError

log = logging.getLogger(__name__)
SCHEMES = ("s3", "s3a", "gs", "gcs", "hf", "az", "abfs", "abfss", "memory")  # memory://: one process only (tests)
PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}
BULK = frozenset({"shards", "parquet", "sft_images"})  # folders of finished image-bearing files
SCRATCH = frozenset({"_spool", "_chunks", "_plan", "index", "logs", "raw", "ledger"})
LEFT_BEHIND = frozenset({"raw", "_spool", "_chunks", "logs"})  # what no reader of a curate output needs
MIRROR_FILE = ".curate-mirror.json"  # beside a mirrored folder: {"url", "local"}
TMP = ".tmp"


def is_url(value: object) -> bool:
    """True for an object-storage URL (s3://bucket/key and the like); local paths and http(s) URLs are not."""
    if not isinstance(value, str):
        return False
    scheme, sep, rest = value.partition("://")
    return bool(sep and rest) and scheme.lower() in SCHEMES


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a storage URL; a missing driver package is a ConfigError."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        package = PACKAGES.get(url.partition("://")[0].lower(), "its fsspec driver")
        raise ConfigError(f"{url}: reading this storage needs the {package} package (pip install {package})") from err


def staging_root() -> Path:
    """Where local copies of inputs and the working folders of outputs live: $CURATE_STAGING, else
    ~/.cache/curate/staging."""
    return Path(os.environ.get("CURATE_STAGING") or Path.home() / ".cache" / "curate" / "staging").absolute()


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _relative(path: str, root: str) -> str:
    return PurePosixPath(path).relative_to(PurePosixPath(root)).as_posix() if path != root else ""


def _get(fs: Any, remote: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}{TMP}")
    fs.get_file(remote, str(tmp))
    os.replace(tmp, target)


# ---------------------------------------------------------------------------------------------- folders


@dataclass(frozen=True)
class Mirror:
    """A local folder backed by object storage: `local` holds some files of `url`; the rest are recorded under
    `remote_only` (an empty file per object) and read from object storage."""

    local: Path
    url: str
    bulk: frozenset[str] = BULK  # folders whose files live in object storage only

    @property
    def remote_only(self) -> Path:
        return self.local.parent / "remote_only"

    def relative(self, path: Path) -> str:
        return Path(path).absolute().relative_to(self.local).as_posix()

    def remote(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def record(self, rel: str) -> None:
        """`rel` is in object storage only; its local folder exists (so folder checks hold), empty."""
        target = self.remote_only / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        (self.local / rel).parent.mkdir(parents=True, exist_ok=True)


def _open_mirror(local: Path, url: str, bulk: frozenset[str] = BULK) -> Mirror:
    found = Mirror(local, url, bulk)
    local.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": url, "local": str(local), "bulk": sorted(bulk)}
    (local.parent / MIRROR_FILE).write_text(json.dumps(record))
    return found


def mirror_of(path: Path) -> Mirror | None:
    """The object-storage folder `path` lies in (an output's working folder, an input's local view), or None."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        record = folder.parent / MIRROR_FILE
        if record.is_file():
            try:
                data = json.loads(record.read_text())
                if Path(data["local"]) == folder:
                    return Mirror(folder, data["url"], frozenset(data.get("bulk", BULK)))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not ours
    return None


def _bulk(parts: list[str], bulk: frozenset[str] = BULK) -> bool:
    """Image-bearing files that stay in object storage: finished shards, parquet parts and SFT images (an
    export's `bulk` folders), and an output's spool parts once uploaded."""
    return parts[0] == "_spool" or (not SCRATCH.intersection(parts) and bool(bulk.intersection(parts[:-1])))


# ---------------------------------------------------------------------------------------------- inputs


def fetch(url: str) -> Path:
    """The local view of the file or folder at `url` (see the module docstring); its path."""
    url = url.rstrip("/")
    fs, root = filesystem(url)
    folder = fs.isdir(root)
    try:
        found = fs.find(root, detail=True) if folder else {root: fs.info(root)}
    except FileNotFoundError:
        found = {}
    if not found:
        raise ConfigError(f"{url} does not exist (or holds no files)")
    name = PurePosixPath(root).name or "root"
    local = staging_root() / "in" / _key(url) / name
    view = _open_mirror(local, url) if folder else None
    fetched = left = 0
    for path, info in sorted(found.items()):
        rel = _relative(path, root)
        if rel.split("/")[0] in LEFT_BEHIND:
            continue
        if view is not None and _bulk([name, *rel.split("/")]):
            view.record(rel)
            left += 1
            continue
        target = local / rel if rel else local
        if not (target.is_file() and target.stat().st_size == info.get("size")):
            _get(fs, path, target)
            fetched += 1
    log.info("%s: %d of %d files fetched to %s, %d shards read in place", url, fetched, len(found), local, left)
    return local


def localize(raw: dict[str, Any]) -> dict[str, Any]:
    """A config mapping with every storage URL but `output.dir` replaced by its local view (`fetch`); an
    `output.dir` URL stays (run.json records it) and its working folder is prepared (`mirror`, `output_path`)."""
    output = raw.get("output")
    out = output.get("dir") if isinstance(output, dict) else None
    views: dict[str, str] = {}  # a URL named twice (a corpus in two sources) is listed and fetched once

    def local_view(value: str) -> str:
        if is_url(value) and value not in views:
            views[value] = str(fetch(value))
        return views.get(value, value)

    staged = _map_strings({k: v for k, v in raw.items() if k != "output"}, local_view)
    if isinstance(output, dict):
        if is_url(out):
            mirror(out)
        staged["output"] = {**output, **_map_strings({k: v for k, v in output.items() if k != "dir"}, local_view)}
    return staged


def portable(value: Any) -> Any:
    """`value` with local views of storage inputs named relative to the staging root, so that a run's identity
    is the same on every machine (a run killed on one resumes on another with its own $CURATE_STAGING)."""
    prefix = f"{staging_root()}/in/"
    return _map_strings(value, lambda s: f"staged:{s[len(prefix) :]}" if s.startswith(prefix) else s)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` (nested dicts and lists) with `change` applied to every string in it."""
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return change(value) if isinstance(value, str) else value


def local_path(value: str) -> Path:
    """The path a command argument names: a local path as given, a storage URL's local view."""
    return fetch(value) if is_url(value) else Path(value)


# ---------------------------------------------------------------------------------------------- reading


def _remote_only(path: Path | str) -> tuple[Mirror, str] | None:
    """(its mirror, its path there) when `path` is not on local disk but its object is recorded; else None."""
    if Path(path).exists():
        return None
    found = mirror_of(Path(path))
    if found is None or not (found.remote_only / found.relative(path)).is_file():
        return None
    return found, found.relative(path)


def exists(path: Path) -> bool:
    """The file is there: locally, or in object storage behind a mirrored folder."""
    return Path(path).exists() or _remote_only(path) is not None


def open_read(path: Path | str) -> BinaryIO:
    """A binary file object on `path`: the local file, or its object behind a mirrored folder."""
    remote = _remote_only(path)
    if remote is None:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it (FileNotFoundError when missing)
    found, rel = remote
    return filesystem(found.url)[0].open(found.remote(rel), "rb")


def read_at(path: Path | str, offset: int, size: int) -> bytes:
    """`size` bytes at `offset`: a seek in a local file, or one ranged GET for an object (no read-ahead block,
    which would fetch megabytes for each image)."""
    remote = _remote_only(path)
    if remote is not None:
        found, rel = remote
        return filesystem(found.url)[0].cat_file(found.remote(rel), start=offset, end=offset + size)
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def glob(folder: Path, pattern: str) -> list[Path]:
    """Sorted files matching `pattern` (Path.glob syntax, `**` included) under `folder`, local or remote-only."""
    found = {p for p in Path(folder).glob(pattern) if p.is_file()}
    mirrored = mirror_of(folder)
    if mirrored is not None:
        records = mirrored.remote_only / mirrored.relative(folder)
        found |= {Path(folder) / r.relative_to(records) for r in records.glob(pattern) if r.is_file()}
    return sorted(found)


# ---------------------------------------------------------------------------------------------- outputs


def working_folder(url: str) -> Path:
    url = url.rstrip("/")
    return staging_root() / "out" / _key(url) / (PurePosixPath(url).name or "run")


def output_path(value: str | Path) -> Path:
    """Where a command writes its output `value`: the path itself, or the working folder of a storage URL."""
    return working_folder(value) if is_url(value) else Path(value)


def mirror_at(folder: Path) -> Mirror | None:
    """The mirror whose local folder is `folder` itself (not one above it), or None."""
    found = mirror_of(folder)
    return found if found is not None and found.local == Path(folder).absolute() else None


def shown(path: Path) -> str:
    """`path` for messages: the URL of a mirrored working folder, else the path."""
    found = mirror_at(path)
    return found.url if found is not None else str(path)


def mirror(url: str, bulk: frozenset[str] = BULK) -> Path:
    """Prepare the local working folder of the output at `url`: the run's state pulled from object storage;
    files under `bulk` folders are uploaded, then dropped locally."""
    url = url.rstrip("/")
    found = _open_mirror(working_folder(url), url, bulk)
    fs, root = filesystem(url)
    fs.invalidate_cache()  # fsspec caches listings per process; other processes upload
    remote = fs.find(root, detail=True) if fs.exists(root) else {}
    pulled = 0
    for path in sorted(remote):
        rel = _relative(path, root)
        if _bulk(rel.split("/"), bulk):
            found.record(rel)
        elif not (found.local / rel).exists():
            _get(fs, path, found.local / rel)
            pulled += 1
    log.info("output %s: working folder %s (%d files pulled, %d objects there)", url, found.local, pulled, len(remote))
    return found.local


def publish(path: Path) -> None:
    """`path` is complete: upload it when it lies in an output's working folder, and drop the local copy of bulk."""
    found = mirror_of(path)
    if found is None:
        return
    rel = found.relative(path)
    fs, _ = filesystem(found.url)
    fs.put_file(str(path), found.remote(rel))
    if _bulk(rel.split("/"), found.bulk):
        found.record(rel)
        Path(path).unlink()


def move(source: Path, target: Path) -> None:
    """Rename a finished file of a run (a spool part that is exactly a shard), locally or in object storage."""
    remote = _remote_only(source)
    if remote is None:
        os.replace(source, target)
        publish(target)
        return
    found, rel = remote
    filesystem(found.url)[0].mv(found.remote(rel), found.remote(found.relative(target)))
    found.record(found.relative(target))
    (found.remote_only / rel).unlink()


def remove_tree(path: Path) -> None:
    """Delete a folder, and in a mirrored folder its objects and records too (--overwrite)."""
    shutil.rmtree(path, ignore_errors=True)
    found = mirror_of(path)
    if found is None:
        return
    rel = found.relative(path)
    fs, root = filesystem(found.url)
    target = f"{root}/{rel}".rstrip("/") if rel != "." else root
    if fs.exists(target):
        fs.rm(target, recursive=True)
    shutil.rmtree(found.remote_only / rel if rel != "." else found.remote_only, ignore_errors=True)


def sync_mirror(folder: Path) -> bool:
    """Make the objects under a mirrored `folder` equal its local files plus the remote-only ones: upload what
    differs, delete the objects of files the run deleted. False for a local folder."""
    found = mirror_at(folder)
    if found is None:
        return False
    fs, root = filesystem(found.url)
    fs.invalidate_cache()
    remote = (
        {_relative(p, root): i.get("size") for p, i in fs.find(root, detail=True).items()} if fs.exists(root) else {}
    )
    local = {
        p.relative_to(found.local).as_posix(): p.stat().st_size
        for p in found.local.rglob("*")
        if p.is_file() and not p.name.endswith(TMP)
    }
    kept_remote = (
        {p.relative_to(found.remote_only).as_posix() for p in found.remote_only.rglob("*")}
        if found.remote_only.exists()
        else set()
    )
    for rel in sorted(local):
        if remote.get(rel) != local[rel]:
            fs.put_file(str(found.local / rel), found.remote(rel))
    stale = sorted(rel for rel in remote if rel not in local and rel not in kept_remote)
    if stale:
        fs.rm([found.remote(rel) for rel in stale])
    log.info(
        "output %s: %d files uploaded in all, %d stale objects deleted",
        found.url,
        len(local) + len(kept_remote),
        len(stale),
    )
    return True


def release_mirror(folder: Path) -> None:
    """Drop the local working folder of a finished mirrored run (its objects are complete)."""
    found = mirror_at(folder)
    if found is not None:
        shutil.rmtree(found.local, ignore_errors=True)
        shutil.rmtree(found.remote_only, ignore_errors=True)
