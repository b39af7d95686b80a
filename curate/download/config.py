"""img2dataset settings for url_list inputs (the `download:` section of a filter config)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from curate.core.errors import ConfigError
from curate.download.url_policy import UrlPolicy

RESIZE_MODES = ("no", "keep_ratio", "keep_ratio_largest", "center_crop", "border")
DISTRIBUTORS = ("multiprocessing", "ray")


@dataclass(frozen=True, kw_only=True)
class DownloadConfig:
    """img2dataset settings for url_list inputs (see img2dataset.download)."""

    image_size: int = 512
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = True
    encode_quality: int = 95
    processes: int = 2
    threads: int = 32
    timeout: int = 10
    retries: int = 0
    distributor: str = "multiprocessing"
    # URL lists are untrusted (curate/download/url_policy.py): loopback, link-local and private addresses are refused
    # unless listed here as CIDRs ("127.0.0.1/32"); file:// URLs only with allow_file_urls.
    allow_networks: tuple[str, ...] = ()
    allow_file_urls: bool = False
    deadline: int = 60  # seconds for one image, redirects included: `timeout` bounds each socket read only
    max_image_bytes: int = 64 * 1024 * 1024  # a response past this is download:too_large, not read into memory

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"download.resize_mode {self.resize_mode!r}; valid: {', '.join(RESIZE_MODES)}")
        if self.distributor not in DISTRIBUTORS:
            raise ConfigError(f"download.distributor {self.distributor!r}; valid: {', '.join(DISTRIBUTORS)}")
        for name in ("image_size", "processes", "threads", "timeout", "deadline", "max_image_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"download.{name} must be >= 1")
        for network in self.allow_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as err:
                raise ConfigError(f"download.allow_networks: {network!r} is not a CIDR like 127.0.0.1/32") from err

    def policy(self) -> UrlPolicy:
        """The URL policy these settings allow."""
        return UrlPolicy(allow_networks=self.allow_networks, allow_file_urls=self.allow_file_urls)
