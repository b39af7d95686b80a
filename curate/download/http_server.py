"""A quiet static file server on 127.0.0.1 for the run's own local inputs (the embedded demo, tests)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVE_HOST = "127.0.0.1"  # loopback only; the URL policy must allow it (download.allow_networks)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def serve_directory(directory: str | Path) -> Iterator[str]:
    """Serve `directory` on an ephemeral loopback port; yields the base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(Path(directory).resolve()))
    server = ThreadingHTTPServer((SERVE_HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="curate-http", daemon=True)
    thread.start()
    try:
        yield f"http://{SERVE_HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
