"""A loopback HTTP server that misbehaves on purpose (issue 8): slow, trickling, resetting, looping, lying about
content types, sending endless bodies, redirecting to forbidden hosts. Plus hostile image files."""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_header_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG that declares 10^10 pixels but carries a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def decompression_bomb_png(side: int = 12_000) -> bytes:
    """144 M pixels of one colour: a few kB on disk, > 400 MB once decoded to RGB."""
    out = BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_hostile_files(folder: Path) -> dict[str, bytes]:
    files = {
        "bomb.png": decompression_bomb_png(),
        "empty.jpg": b"",
        "huge_header.png": huge_header_png(),
        "page.html": b"<!doctype html><html><body>not an image</body></html>",
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


class _Handler(BaseHTTPRequestHandler):
    files: Path
    other_host: str  # base URL of the second server (a host the policy refuses)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802, C901, PLR0912 - one route per misbehaviour
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            name = path.removeprefix("/files/")
            file = self.files / name
            if "/" in name or not file.is_file():
                self.send_error(404)
                return
            self._send(file.read_bytes(), "image/jpeg")
        elif path == "/html-as-jpeg":
            self._send(b"<!doctype html><html><head><title>Login</title></head><body>hi</body></html>", "image/jpeg")
        elif path == "/slow":  # no response before the client's timeout
            time.sleep(4)
            self._send(b"late", "image/jpeg")
        elif path == "/trickle":  # one byte at a time: never a read timeout, only the deadline ends it
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:
                pass
        elif path == "/endless":  # a body with no end
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            block = b"\0" * 65536
            try:
                for _ in range(20_000):  # 1.3 GB at most, should the client not stop
                    self.wfile.write(block)
            except OSError:
                pass
        elif path == "/reset":  # RST instead of a response
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/redirect-forbidden":  # an allowed host sends the client to a refused one
            self._redirect(f"{self.other_host}/files/hopper.jpg")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def hostile_servers(files: Path) -> Iterator[tuple[str, str]]:
    """(allowed base URL on 127.0.0.1, second base URL on 127.0.0.2), both serving the same routes."""
    servers = []
    for host in ("127.0.0.1", "127.0.0.2"):
        handler = type("Handler", (_Handler,), {"files": files})
        server = ThreadingHTTPServer((host, 0), handler)
        server.daemon_threads = True
        servers.append(server)
    bases = [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers]
    for server in servers:
        server.RequestHandlerClass.other_host = bases[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield bases[0], bases[1]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
