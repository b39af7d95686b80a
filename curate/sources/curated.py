"""Kept pairs of a `curate filter` run (its ledger + shards) as captioning records."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.compute as pc

from curate.errors import ConfigError
from curate.io.ledger import read_ledger
from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class Curated(Source):
    """A finished filter run's output dir: one record per kept row, image bytes from its shards."""

    kind: ClassVar[str] = "curated"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("caption",)
    run: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (Path(self.run) / "_SUCCESS").exists():
            raise ConfigError(
                f"source curated: {self.run} is not a finished filter run (no _SUCCESS); run `curate filter` first"
            )

    def records(self) -> Iterator[dict[str, Any]]:
        ledger = read_ledger(Path(self.run), ["key", "caption", "reject_reason"])
        kept = ledger.filter(pc.is_null(ledger.column("reject_reason")))
        captions = dict(zip(kept.column("key").to_pylist(), kept.column("caption").to_pylist(), strict=True))
        for shard in sorted((Path(self.run) / "shards").glob("shard-*.tar")):
            with tarfile.open(shard) as tar:
                names = [m.name for m in tar if m.name.endswith(".jpg")]
            for member in names:
                key = member.removesuffix(".jpg")
                yield {
                    "source": self.name,
                    "id": key,
                    "image": f"{self.name}/{key}.jpg",
                    "image_file": str(shard),
                    "image_member": member,
                    "captions": [captions[key]],
                }
