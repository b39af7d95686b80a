import pytest

from curate.download.stage import download_reason
from curate.filters import reject_reasons


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        ("success", None, None),
        ("failed_to_download", "HTTP Error 404: File not found", "download:not_found"),
        ("failed_to_download", "HTTP Error 410: Gone", "download:not_found"),
        ("failed_to_download", "HTTP Error 503: Service Unavailable", "download:http_error"),
        ("failed_to_download", "The read operation timed out", "download:timeout"),
        ("failed_to_download", "<urlopen error [Errno 111] Connection refused>", "download:connection_error"),
        ("failed_to_download", "[Errno 104] Connection reset by peer", "download:connection_error"),
        ("failed_to_download", "unknown url type: ''", "download:invalid_url"),
        ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", "download:disallowed"),
        ("failed_to_download", "something new", "download:error"),
        ("failed_to_resize", "Image decoding error", "image:decode_error"),
        (None, None, "download:error"),
    ],
)
def test_img2dataset_status_maps_to_a_stable_reason(status, message, reason):
    assert download_reason(status, message) == reason
    assert reason is None or reason in reject_reasons()
