"""What img2dataset's download workers fetch with: urllib, but refusing forbidden addresses at connect time
(redirect targets and DNS answers included), with a total deadline and a byte cap per image.

img2dataset's own fetch (`urllib.request.urlopen(request, timeout)` then `r.read()`) has a per-socket-operation
timeout only: a server that sends one byte every few seconds holds a download thread forever, and a response of
unbounded length is read into memory. `GuardedDownloader` is img2dataset's Downloader with these guards
installed in whichever process runs it (multiprocessing and Ray workers alike); it travels there pickled.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from img2dataset import downloader as i2d_downloader

from curate.download.url_policy import UrlPolicy, refusal_message

DEADLINE_MARK = "curate:deadline"  # error_message markers mapped to reasons in curate/download/stage.py
TOO_LARGE_MARK = "curate:too_large"


@dataclass(frozen=True)
class FetchLimits:
    policy: UrlPolicy
    deadline: float  # seconds for one image, first connect to last byte, redirects included
    max_bytes: int  # response bytes read for one image, headers included


_state = threading.local()  # per download thread: the current image's deadline and bytes left
_limits: FetchLimits | None = None


def _guarded_read(sock: socket.socket, read: Any, *args: Any) -> Any:
    """One socket read under the current image's deadline and byte budget (no budget: a plain read)."""
    deadline = getattr(_state, "deadline", None)
    if deadline is None:
        return read(*args)
    left = deadline - time.monotonic()
    if left > 0:
        sock.settimeout(min(left, _state.op_timeout) if _state.op_timeout else left)
        try:
            data = read(*args)
        except TimeoutError:
            if time.monotonic() < deadline:
                raise  # the per-read timeout, not the deadline
            left = 0
    if left <= 0:
        raise TimeoutError(f"{DEADLINE_MARK} the image took longer than {_state.total:g} s")
    _state.received += data if isinstance(data, int) else len(data)
    if _state.received > _state.max_bytes:
        raise OSError(f"{TOO_LARGE_MARK} the response is larger than {_state.max_bytes} bytes")
    return data


class _DeadlineReads:
    """Socket reads under the image's budget; mixed into plain and TLS sockets."""

    def recv_into(self, *args: Any) -> int:
        return _guarded_read(self, super().recv_into, *args)  # type: ignore[misc]

    def recv(self, *args: Any) -> bytes:
        return _guarded_read(self, super().recv, *args)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineReads, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineReads, ssl.SSLSocket):
    pass


def guarded_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
    """socket.create_connection, refusing when any address the host resolves to is forbidden."""
    assert _limits is not None, "guarded_fetch.install() was not called in this process"
    host, port = address
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        host = "127.0.0.1"  # RFC 6761 sec. 6.3: localhost names are always loopback (as browsers resolve them)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        reason = _limits.policy.address_refusal(sockaddr[0])
        if reason:  # one forbidden answer refuses the host: no picking the harmless one
            raise ConnectionRefusedError(refusal_message(f"{host} resolves to {reason}"))
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = _DeadlineSocket(family, kind, proto)
        try:
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            error = err
            sock.close()
    raise error or OSError(f"getaddrinfo returned nothing for {host}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


def build_opener(limits: FetchLimits) -> urllib.request.OpenerDirector:
    """Only http(s) (and file:// when allowed) handlers: no ftp, data: or environment proxies."""
    context = ssl.create_default_context()
    context.sslsocket_class = _DeadlineSSLSocket
    opener = urllib.request.OpenerDirector()
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.UnknownHandler(),
        _GuardedHTTPHandler(),
        _GuardedHTTPSHandler(context=context),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ]
    if limits.policy.allow_file_urls:
        handlers.append(urllib.request.FileHandler())
    for handler in handlers:
        opener.add_handler(handler)
    return opener


def install(limits: FetchLimits) -> None:
    """Make this process's urllib fetch through the guarded opener, and bound every img2dataset image fetch."""
    global _limits
    if _limits == limits:
        return
    _limits = limits
    urllib.request.install_opener(build_opener(limits))
    original = getattr(i2d_downloader.download_image, "__wrapped__", i2d_downloader.download_image)

    def download_image(row: Any, timeout: Any, *args: Any, **kwargs: Any) -> Any:
        _state.deadline = time.monotonic() + limits.deadline
        _state.total, _state.op_timeout = limits.deadline, timeout
        _state.received, _state.max_bytes = 0, limits.max_bytes
        try:
            return original(row, timeout, *args, **kwargs)
        finally:
            _state.deadline = None

    download_image.__wrapped__ = original  # type: ignore[attr-defined]
    i2d_downloader.download_image = download_image  # looked up at call time by download_image_with_retry


class GuardedDownloader(i2d_downloader.Downloader):
    """img2dataset's Downloader; installs the guards in the worker process before it downloads a shard."""

    def __init__(self, *args: Any, limits: FetchLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    def __call__(self, row: Any) -> Any:
        install(self.limits)
        return super().__call__(row)
