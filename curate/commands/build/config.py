"""`curate build`'s config: named sources, chunk size, output and Ray (pipelines/build_*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.core.config import OutputConfig, RayConfig, build_dataclass, build_named, read_yaml
from curate.core.errors import ConfigError
from curate.core.storage import output_path
from curate.dedup.reference import Decontamination


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """A stage-2 task build (curate build): sources -> task builders -> shards per task."""

    name: str
    sources: tuple[Any, ...]
    records_per_chunk: int = 1000  # source records per unit of resumable work (one Ray task)
    # Refuse records whose image is in a reference set (a benchmark's test split): skipped as contaminated:<set>.
    decontaminate: Decontamination | None = None
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ConfigError(f"name {self.name!r} must be non-empty, without spaces or slashes")
        if not self.sources:
            raise ConfigError("sources must list at least one source")
        if self.records_per_chunk < 1:
            raise ConfigError("records_per_chunk must be >= 1")

    @property
    def out_dir(self) -> Path:
        return output_path(self.output.dir or f"out/{self.name}")


def load_build(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> BuildConfig:
    """Read a task-build YAML (curate build), apply overrides, validate."""
    return build_from_dict(read_yaml(path, overrides), where=Path(path).name)


def build_from_dict(raw: dict[str, Any], where: str = "config") -> BuildConfig:
    from curate.sources import SOURCES

    raw = dict(raw)
    raw["sources"] = tuple(build_named(e, SOURCES, "sources", where) for e in raw.get("sources") or [])
    return build_dataclass(BuildConfig, raw, where)
