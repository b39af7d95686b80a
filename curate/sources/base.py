"""The source abstraction: a dataclass of paths that yields records for some task builders, and says how its
records split into chunks that Ray workers read on their own (issue 15)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from curate.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Source:
    """Reads one dataset; `tasks` says which builders its records feed."""

    kind: ClassVar[str]  # YAML key
    allowed_tasks: ClassVar[tuple[str, ...]]
    default_tasks: ClassVar[tuple[str, ...]] = ()  # when `tasks` is not set; empty: all of allowed_tasks
    label: str = ""  # name used in sample keys and <img> paths; defaults to `kind`
    tasks: tuple[str, ...] = ()
    require_local_images: bool = True  # False: a sample may point at an image URL with no bytes in the shard
    license: str = ""  # the data's licence as its publisher states it (e.g. CC-BY-4.0); the export card lists it

    def __post_init__(self) -> None:
        if not self.tasks:
            object.__setattr__(self, "tasks", self.default_tasks or self.allowed_tasks)
        bad = [t for t in self.tasks if t not in self.allowed_tasks]
        if bad:
            raise ConfigError(
                f"source {self.kind} cannot feed task(s) {', '.join(bad)}; valid: {', '.join(self.allowed_tasks)}"
            )
        for path in self.required_paths():
            if not Path(path).exists():
                raise ConfigError(f"source {self.kind}: {path} not found")

    @property
    def name(self) -> str:
        return self.label or self.kind

    def required_paths(self) -> list[str]:
        return []

    def records(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def chunks(self, size: int) -> list[Any]:
        """JSON-able chunk descriptors, in record order, each of about `size` records. The default counts the
        records once and cuts index ranges; sources whose records are cheap to address override it."""
        count = sum(1 for _ in self.records())
        return [[start, min(start + size, count)] for start in range(0, count, size)]

    def read_chunk(self, chunk: Any) -> Iterator[dict[str, Any]]:
        """The records of one chunk descriptor (run in a Ray worker)."""
        start, stop = chunk
        return itertools.islice(self.records(), start, stop)

    def input_paths(self) -> list[str]:
        """Files and folders whose content defines the records (the run identity)."""
        return self.required_paths()

    def preflight(self) -> None:
        """Fail fast on missing setup (fonts, models) before any worker starts; most sources need nothing."""

    def tags(self, record: dict[str, Any]) -> dict[str, str]:
        """Labels of a record counted in the build's stats (e.g. a synthetic document's language)."""
        return {}


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when the file is missing or unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError):
        return None
