"""Which URLs a run may fetch. URL lists are untrusted (issue 8): a row must not make curate read local files or
talk to the machine's own network (loopback, link-local cloud metadata at 169.254.169.254, private ranges)
unless the config allows exactly that.

Checked twice: here on the URL text before the download (clear reasons, no connection made), and again on every
address a host name resolves to at connect time, redirects included (curate/download/guarded_fetch.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

REFUSED_MARK = "curate:refused"  # in img2dataset's error_message; maps to the download:refused reason
WEB_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class UrlPolicy:
    allow_networks: tuple[str, ...] = ()  # CIDRs fetched although they are not globally routable
    allow_file_urls: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_networks", tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks)
        )

    def address_refusal(self, address: str) -> str | None:
        """Why `address` (an IP literal) must not be contacted, or None."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            return f"{address!r} is not an IP address"
        if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
            ip = ip.ipv4_mapped
        if any(ip in net for net in self._networks):  # type: ignore[attr-defined]
            return None
        for kind, flag in (
            ("loopback", ip.is_loopback),
            ("link-local", ip.is_link_local),
            ("private", ip.is_private),
            ("multicast", ip.is_multicast),
        ):
            if flag:
                return f"{ip} is a {kind} address (allow it with download.allow_networks)"
        if not ip.is_global:
            return f"{ip} is not a globally routable address (allow it with download.allow_networks)"
        return None

    def url_refusal(self, url: str | None) -> str | None:
        """Why `url` is refused before any connection, or None (empty URLs are left to the downloader)."""
        if not url:
            return None
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
        except ValueError as err:
            return f"unparseable URL: {err}"
        scheme = parts.scheme.lower()
        if scheme == "file":
            return (
                None if self.allow_file_urls else "file:// URLs are refused (allow them with download.allow_file_urls)"
            )
        if scheme not in WEB_SCHEMES:
            return f"scheme {scheme or '(none)'!r} is refused; valid: {', '.join(WEB_SCHEMES)}"
        return self._host_refusal(host)

    def _host_refusal(self, host: str | None) -> str | None:
        if not host:
            return None  # no host: the downloader reports it as an invalid URL
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
            host = "127.0.0.1"
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None  # a host name: its addresses are checked when the connection is made
        return self.address_refusal(host)


def refusal_message(reason: str) -> str:
    return f"{REFUSED_MARK} {reason}"
