"""`curate filter`'s config: input, download, filters, output and Ray (pipelines/filter_*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.core.config import OutputConfig, RayConfig, build_dataclass, build_named, read_yaml
from curate.core.errors import ConfigError
from curate.core.storage import output_path
from curate.download.config import DownloadConfig
from curate.download.http_server import SERVE_HOST
from curate.download.url_policy import UrlPolicy
from curate.filters import FILTERS
from curate.filters.base import Filter
from curate.ledger.inputs import InputConfig


@dataclass(frozen=True, kw_only=True)
class FilterRunConfig:
    """A complete stage-1 filter run."""

    name: str
    input: InputConfig
    download: DownloadConfig = field(default_factory=DownloadConfig)
    filters: tuple[Filter, ...] = ()
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ConfigError(f"name {self.name!r} must be non-empty, without spaces or slashes")
        serve = self.input.url_list.serve_dir if self.input.url_list else None
        if serve and UrlPolicy(allow_networks=self.download.allow_networks).address_refusal(SERVE_HOST):
            raise ConfigError(
                f"input.url_list.serve_dir is served on {SERVE_HOST}, which the URL policy refuses: add "
                f"download.allow_networks: [{SERVE_HOST}/32] to allow the run's own server explicitly"
            )
        names = [f.name for f in self.filters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"filters listed twice: {', '.join(dupes)}")
        _check_global_stages(self.filters)

    @property
    def out_dir(self) -> Path:
        return output_path(self.output.dir or f"out/{self.name}")


def _check_global_stages(filters: tuple[Filter, ...]) -> None:
    """Dedup stages decide over the whole run after the per-row filters: they come last, and the semantic one
    needs the CLIP embeddings (turned on here, so the run identity records it)."""
    names = [f.name for f in filters]
    first_global = next((i for i, f in enumerate(filters) if getattr(f, "global_stage", False)), len(filters))
    late = [f.name for f in filters[first_global:] if not getattr(f, "global_stage", False)]
    if late:
        raise ConfigError(
            f"filters {', '.join(late)} come after the dedup stage {names[first_global]}: dedup stages decide over "
            f"the whole run once every per-row filter is done, so list them last (README, Deduplication)"
        )
    semantic = [f for f in filters if f.name == "dedup_semantic" or (f.name == "decontaminate" and f.eps)]
    if semantic:
        clip = next((f for f in filters if f.name == "clip_score" and not f.skip), None)
        if clip is None:
            raise ConfigError(
                f"{semantic[0].name} compares CLIP image embeddings: add a clip_score filter before it"
                + (" (or set decontaminate.eps: null)" if semantic[0].name == "decontaminate" else "")
            )
        clip.save_embeddings = True


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> FilterRunConfig:
    """Read a filter pipeline YAML, apply `key=value` overrides and build the validated config tree."""
    return from_dict(read_yaml(path, overrides), where=Path(path).name)


def from_dict(raw: dict[str, Any], where: str = "config") -> FilterRunConfig:
    """Build a FilterRunConfig from plain data (as parsed from YAML)."""
    raw = dict(raw)
    raw["filters"] = tuple(build_named(e, FILTERS, "filters", where) for e in raw.get("filters") or [])
    return build_dataclass(FilterRunConfig, raw, where)
