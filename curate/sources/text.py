"""Plain text corpora: one document per line (e.g. the SynthDoG Wikipedia dumps)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.core.errors import ConfigError
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

    def input_paths(self) -> list[str]:
        return [str(p) for p in self.files()]

    def records(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks(1 << 62):
            yield from self.read_chunk(chunk)

    def chunks(self, size: int) -> list[Any]:
        """[file, byte offset, line number, documents]: one pass over the bytes finds where each chunk starts."""
        found = []
        for f, path in enumerate(self.files()):
            offset, line_no, start, docs = 0, 0, None, 0
            with open(path, "rb") as lines:
                for line in lines:
                    if line.strip():
                        if start is None:
                            start = [f, offset, line_no]
                        docs += 1
                        if docs == size:
                            found.append([*start, docs])
                            start, docs = None, 0
                    offset += len(line)
                    line_no += 1
            if start is not None:
                found.append([*start, docs])
        return found

    def read_chunk(self, chunk: Any) -> Iterator[dict[str, Any]]:
        f, offset, line_no, docs = chunk
        path = self.files()[f]
        with open(path, "rb") as lines:
            lines.seek(offset)
            for i, raw in enumerate(lines, start=line_no):
                if docs == 0:
                    return
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.strip():
                    docs -= 1
                    yield {"source": self.name, "id": f"{path.stem}-{i}", "text": line}
