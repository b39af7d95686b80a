"""Web URLs as browsers send them (issue 21): non-ASCII characters and spaces percent-encoded, hosts IDNA-encoded,
before the download. The three LAION-style rows that failed before any request (a `‘` and a `©` in the path, a
space) download from the loopback server, as does a Unicode host; a URL that cannot be encoded gets its own
reason."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from PIL import Image

from curate.download.config import DownloadConfig
from curate.download.http_server import serve_directory
from curate.download.stage import download, raw_chunk_table
from curate.download.url_encoding import UrlEncodingError, browser_url


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://example.com/a\u2018b.jpg", "http://example.com/a%E2%80%98b.jpg"),
        ("http://example.com/\xa9 2019.jpg", "http://example.com/%C2%A9%202019.jpg"),
        ("http://example.com/with space.jpg", "http://example.com/with%20space.jpg"),
        ("http://B\xfccher.Example:8080/x.jpg", "http://xn--bcher-kva.example:8080/x.jpg"),
        ("https://example.com/p?q=caf\xe9 au lait&x=1#frag", "https://example.com/p?q=caf%C3%A9%20au%20lait&x=1"),
        ("  http://example.com/a.jpg\n", "http://example.com/a.jpg"),
        ("http://example.com/a\tb\nc.jpg", "http://example.com/abc.jpg"),
        ("http://example.com/already%20encoded%E2%80%98.jpg", "http://example.com/already%20encoded%E2%80%98.jpg"),
        ("http://example.com/a<b>|{c}.jpg", "http://example.com/a%3Cb%3E|%7Bc%7D.jpg"),
        ("http://example.com/x\\y[1].jpg?a[]=1&q=it's", "http://example.com/x/y[1].jpg?a[]=1&q=it%27s"),
        ("http://\u2603.net/a", "http://xn--n3h.net/a"),  # IDNA 2008 refuses the snowman; browsers do not
        ("http://[2001:db8::1]:81/a.jpg", "http://[2001:db8::1]:81/a.jpg"),
        ("http://example.com", "http://example.com/"),
    ],
)
def test_urls_are_encoded_as_a_browser_sends_them(url, sent):
    assert browser_url(url) == sent
    assert browser_url(sent) == sent  # encoding twice changes nothing
    assert sent.isascii()


@pytest.mark.parametrize(
    "url", ["http://example.com:99999/a.jpg", "http://exa mple.com/a.jpg", "http://" + "\xfc" * 64 + ".com/a.jpg"]
)
def test_urls_that_cannot_be_encoded_raise(url):
    with pytest.raises(UrlEncodingError):
        browser_url(url)


def test_such_urls_download_from_the_loopback_server_and_bad_ones_get_their_own_reason(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    names = ["a\u2018quote.jpg", "\xa9 2019 photo.jpg", "with space.jpg", "unicode host.jpg"]
    for i, name in enumerate(names):
        out = io.BytesIO()
        Image.new("RGB", (64 + i, 48), (40 * i, 90, 160)).save(out, format="JPEG")
        (files / name).write_bytes(out.getvalue())
    with serve_directory(files) as base:
        port = base.rstrip("/").rsplit(":", 1)[1]
        urls = [base + n for n in names[:3]]
        urls += [f"http://b\xfccher.localhost:{port}/{names[3]}", f"http://127.0.0.1:{port}99999/x.jpg"]
        rows = pa.table(
            {
                "row_id": pa.array(range(len(urls)), pa.int64()),
                "key": [f"{i:09d}" for i in range(len(urls))],
                "chunk": pa.array([0] * len(urls), pa.int32()),
                "url": urls,
                "caption_raw": ["a photo"] * len(urls),
            }
        )
        cfg = DownloadConfig(allow_networks=("127.0.0.0/8",), processes=1, threads=4, timeout=5, deadline=10)
        download(rows, tmp_path / "raw", cfg, rows_per_chunk=len(urls), base_url=None)
    table = raw_chunk_table(rows, tmp_path / "raw", 0, 1).to_pylist()
    assert [r["reject_reason"] for r in table] == [None, None, None, None, "download:bad_url"], [
        (r["url"], r["error_message"]) for r in table
    ]
    assert [r["width"] for r in table[:4]] == [64, 65, 66, 67]  # each row got its own file
    assert [r["url"] for r in table] == urls  # the ledger keeps the URL as the input wrote it
    assert "Port out of range" in table[4]["error_message"]
