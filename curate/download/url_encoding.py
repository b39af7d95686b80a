"""Web URLs as browsers send them (issue 21). Alt-text URL lists hold what a page's HTML held: a `‘` or a `©` in
the path, a space, a host in Unicode. urllib sends none of these (`'ascii' codec can't encode character`,
`URL can't contain control characters`), so before the download each URL is encoded the way a browser's URL
parser (WHATWG URL Standard) does it:

- leading and trailing spaces and C0 controls are dropped, and tabs and newlines anywhere are removed;
- the host is lower-cased and IDNA-encoded (UTS #46, as browsers do: `bücher.example` -> `xn--bcher-kva.example`);
- the path and query are UTF-8 percent-encoded where the URL Standard's path and query percent-encode sets
  say (non-ASCII, spaces, controls, quotes, `<`, `>`, and in paths also `` ` ``, `{`, `}`); existing `%XX`
  escapes are kept as they are; in http(s) URLs a backslash is a slash;
- the fragment is dropped: browsers never send it.

A URL that cannot be encoded (a host label IDNA refuses, a bad port) raises UrlEncodingError; the row ends as
`download:bad_url` with the error, never as the catch-all `download:error`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

ENCODING_MARK = "curate:bad_url"  # in the URL file's `refused` column; maps to the download:bad_url reason
# The URL Standard's percent-encode sets: in a path, C0 controls, space, '"', '#', '<', '>', '?', '`', '{', '}'
# (and non-ASCII, as UTF-8); in the query of an http(s) URL, C0 controls, space, '"', '#', '<', '>' and "'".
# Everything else printable is sent as it is ('[', ']', '|', '^' included), and '%' is kept (an escape there).
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
PATH_SAFE = "".join(c for c in _PRINTABLE if c not in '"#<>?`{}')
QUERY_SAFE = "".join(c for c in _PRINTABLE if c not in "\"#<>'")
TAB_NEWLINE = re.compile(r"[\t\n\r]")
C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
ASCII_HOST = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=-]*|[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?")  # a name, or IPv6


class UrlEncodingError(ValueError):
    """The URL cannot be put on the wire."""


def browser_url(url: str) -> str:
    """`url` as a browser would request it (module docstring); ASCII-only."""
    text = TAB_NEWLINE.sub("", url.strip(C0_OR_SPACE))
    if text[:8].lower().startswith(("http://", "https://")):  # special schemes: a backslash is a slash
        text = text.replace("\\", "/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise UrlEncodingError(f"unparseable URL: {err}") from err
    if parts.scheme.lower() not in ("http", "https"):
        return text  # the URL policy and the downloader decide what happens to other schemes
    netloc = encoded_host(parts.hostname or "")
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None:
        userinfo = quote(parts.username, safe="%!$&'()*+,;=-._~")
        if parts.password is not None:
            userinfo += ":" + quote(parts.password, safe="%!$&'()*+,;=-._~")
        netloc = f"{userinfo}@{netloc}"
    path = quote(parts.path, safe=PATH_SAFE) or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, quote(parts.query, safe=QUERY_SAFE), ""))


def encoded_host(host: str) -> str:
    """The host in ASCII: IDNA (UTS #46, transitional off, as browsers) for Unicode names; IP literals and ASCII
    names lower-cased as they are."""
    if not host or host.isascii():
        if not ASCII_HOST.fullmatch(host):
            raise UrlEncodingError(f"host {host!r} holds characters no host can carry")
        return host.lower()
    import idna

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as err:
        # Browsers are more lenient than strict IDNA 2008 (symbols like '☃', '_' in labels): fall back to
        # Python's IDNA 2003 codec label by label before giving up
        try:
            return ".".join(label.encode("idna").decode("ascii") if label else "" for label in host.split("."))
        except UnicodeError:
            raise UrlEncodingError(f"host {host!r} cannot be IDNA-encoded: {err}") from err


def encoding_failure(url: str | None) -> str | None:
    """Why `url` cannot be encoded (marked for the ledger), or None."""
    if not url:
        return None
    try:
        browser_url(url)
    except UrlEncodingError as err:
        return f"{ENCODING_MARK} {err}"
    return None
