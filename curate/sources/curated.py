"""Kept pairs of a `curate filter` run (its shards) as captioning records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.core.errors import ConfigError
from curate.core.shards import output_files, read_tar
from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class Curated(Source):
    """A finished filter run's output dir: one record per kept sample of its shards (caption and image bytes)."""

    kind: ClassVar[str] = "curated"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("caption",)
    run: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (Path(self.run) / "_SUCCESS").exists():
            raise ConfigError(
                f"source curated: {self.run} is not a finished filter run (no _SUCCESS); run `curate filter` first"
            )

    def required_paths(self) -> list[str]:
        return [self.run]

    def input_paths(self) -> list[str]:
        return [str(Path(self.run) / name) for name in ("run.json", "stats.json", "shards")]

    def records(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks(0):
            yield from self.read_chunk(chunk)

    def chunks(self, size: int) -> list[Any]:
        """One chunk per shard of the filter run."""
        return [str(p) for p in output_files(Path(self.run) / "shards")]

    def read_chunk(self, chunk: Any) -> Iterator[dict[str, Any]]:
        for row in read_tar(Path(chunk)):
            yield {
                "source": self.name,
                "id": row["key"],
                "image": f"{self.name}/{row['key']}.jpg",
                "image_bytes": row["image"],
                "captions": [row["caption"]],
            }
