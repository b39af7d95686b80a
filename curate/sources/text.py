"""Plain text corpora: one document per line (e.g. the SynthDoG Wikipedia dumps)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.errors import ConfigError
from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class TextFiles(Source):
    """Text files matched by `paths` globs; each non-empty line is one document."""

    kind: ClassVar[str] = "text"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("text",)
    paths: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.files():
            raise ConfigError(f"source text: no file matches {', '.join(self.paths)}")

    def files(self) -> list[Path]:
        return sorted(Path(p) for pattern in self.paths for p in glob.glob(pattern))

    def records(self) -> Iterator[dict[str, Any]]:
        for path in self.files():
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if line.strip():
                    yield {"source": self.name, "id": f"{path.stem}-{i}", "text": line}
