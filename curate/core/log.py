"""Logging, tool output and progress for the command-line entry points (issue 21: progress instead of logs).

curate's own messages go to stderr, one line per event. What the tools underneath print (Ray's Python and C++
logs, Ray Data's progress reports, img2dataset and its workers, Ray workers' forwarded output) goes to a log file
in the run folder (`logs/<command>.log`) unless `--verbose`: `tool_output` points the process's stdout and
stderr file descriptors at that file, so child processes and native code inherit it, while curate's own log
records and progress lines keep going to the terminal through a duplicate of the original stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("botocore", "aiobotocore", "s3fs", "fsspec", "urllib3", "huggingface_hub")
_verbose = False
_tool_log: Path | None = None  # where the tools' output goes now, while tool_output is active
_terminal: TextIO | None = None  # the original stderr, while tool_output is active


def setup_logging(level: str = "INFO", verbose: bool = False) -> None:
    """Configure the root logger once: one line per event, to stderr. `verbose` keeps the tools' output on the
    terminal too."""
    global _verbose
    _verbose = verbose
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), format=FORMAT, datefmt="%H:%M:%S", stream=sys.stderr,
        force=True,
    )  # fmt: skip
    for name in QUIET_LIBRARIES:  # object-storage clients log each credential and endpoint lookup at INFO
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def tool_log_hint() -> str:
    """Where to look for what a tool printed: the run's log file, or the terminal above."""
    return f"see {_tool_log}" if _tool_log is not None else "see above"


class _CurateOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "curate" or record.name.startswith(("curate.", "__main__"))


class _NotCurate(_CurateOnly):
    def filter(self, record: logging.LogRecord) -> bool:
        return not super().filter(record)


@contextmanager
def tool_output(path: Path) -> Iterator[None]:
    """For the block, file descriptors 1 and 2 (inherited by child processes and used by native code and by
    other libraries' log handlers) go to `path`, appended; curate's own log records and progress lines go to the
    original stderr (`terminal()`). Nothing changes under --verbose, when already active, or when the process's
    streams are not file descriptors 1 and 2 (an embedding host)."""
    global _tool_log, _terminal
    try:
        streams_ok = sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):
        streams_ok = False
    if _verbose or _tool_log is not None or not streams_ok:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(path, "ab", buffering=0)  # noqa: SIM115 - first, so a failure here leaks nothing
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    # backslashreplace: a URL or caption the terminal's encoding cannot show must not turn into a logging error
    terminal = open(saved[1], "w", buffering=1, closefd=False, encoding=encoding, errors="backslashreplace")  # noqa: SIM115
    restore_records = _route_records(terminal)
    try:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        _tool_log, _terminal = path, terminal
        yield
    finally:
        _tool_log, _terminal = None, None
        sys.stdout.flush()
        sys.stderr.flush()
        restore_records()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        terminal.close()
        os.close(saved[0])
        os.close(saved[1])
        log_file.close()


def _route_records(terminal: TextIO) -> Any:
    """curate's log records to `terminal`, every other library's to stderr (the file); returns the undo."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if type(h) is logging.StreamHandler]
    streams = [h.stream for h in handlers]
    added = []
    if not handlers:  # no setup_logging (library use): curate's warnings still reach the terminal
        added.append(logging.StreamHandler(terminal))
        added[0].setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
    others = logging.StreamHandler(sys.stderr)  # fd 2: the file, once redirected
    others.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
    others.addFilter(_NotCurate())
    only_curate = _CurateOnly()
    for h in handlers:
        h.setStream(terminal)
    for h in [*handlers, *added]:
        h.addFilter(only_curate)
    for h in [*added, others]:
        root.addHandler(h)

    def undo() -> None:
        for h in [*added, others]:
            root.removeHandler(h)
        for h, stream in zip(handlers, streams, strict=True):
            h.removeFilter(only_curate)
            h.setStream(stream)

    return undo


def tool_log_tail(lines: int = 20) -> str:
    """The last lines the tools wrote to the run's log (for an error message), or "" when output is not
    redirected."""
    if _tool_log is None or not _tool_log.exists():
        return ""
    with open(_tool_log, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
        tail = f.read().decode(errors="replace").splitlines()[-lines:]
    return "\n".join(tail)


def terminal() -> TextIO:
    """Where curate's own output goes: the original stderr while tool_output is active, else sys.stderr."""
    return _terminal or sys.stderr


def progress(total: int | None, desc: str, unit: str = "rows", stream: TextIO | None = None) -> Any:
    """One progress line for a stage (tqdm: count, rate, ETA) on curate's stderr. On a terminal it redraws in
    place; elsewhere (CI logs, files) it redraws at most every 30 s, so a log holds a few lines, not thousands."""
    from tqdm import tqdm

    stream = stream or terminal()
    interactive = getattr(stream, "isatty", lambda: False)()
    return tqdm(
        total=total, desc=desc, unit=unit, file=stream, mininterval=0.5 if interactive else 30.0, unit_scale=True,
        dynamic_ncols=interactive, ncols=None if interactive else 100, leave=True,
    )  # fmt: skip
