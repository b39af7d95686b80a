"""Synthetic OCR documents, SynthDoG-style (QWENVL_FORMAT.md §6), as a source like `shapes` (issue 16): record i
is document i, rendered from (seed, i) alone, so any chunk renders the same documents on any worker."""

from __future__ import annotations

import functools
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from curate.core.errors import ConfigError
from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class Synthdog(Source):
    """`count` documents of English and Chinese text on paper over photos, every line with its quad."""

    kind: ClassVar[str] = "synthdog"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ocr",)
    count: int = 1000
    seed: int = 0
    corpus_en: tuple[str, ...] = ()  # globs of one-document-per-line text files
    corpus_zh: tuple[str, ...] = ()
    zh_share: float = 0.5
    short_side: tuple[int, ...] = (448, 1024)  # canvas short side range in pixels
    # body font size as a share of the paper's short side, [min, max] (titles 1.4-1.9x); smaller = finer print
    text_scale: tuple[float, ...] = (0.0334, 0.07)
    max_lines: int = 0  # lines per document at most (0: as many as fit the paper)
    backgrounds: tuple[str, ...] = ()  # image globs; empty = scikit-image's bundled photos (+ textures)
    documents_per_chunk: int = 50  # a document renders in tens of milliseconds: smaller chunks than records'

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.count < 1 or self.documents_per_chunk < 1:
            raise ConfigError("synthdog: count >= 1 and documents_per_chunk >= 1")
        if not 0 <= self.zh_share <= 1:
            raise ConfigError("synthdog: zh_share must be within [0, 1]")
        if len(self.short_side) != 2 or not 64 <= self.short_side[0] <= self.short_side[1]:
            raise ConfigError("synthdog: short_side must be [min, max] pixels with 64 <= min <= max")
        if len(self.text_scale) != 2 or not 0 < self.text_scale[0] <= self.text_scale[1] <= 0.5:
            raise ConfigError("synthdog: text_scale must be [min, max] with 0 < min <= max <= 0.5 (of the short side)")
        if self.max_lines < 0:
            raise ConfigError("synthdog: max_lines must be >= 0 (0: as many lines as fit)")
        if self.zh_share < 1 and not self.corpus_en or self.zh_share > 0 and not self.corpus_zh:
            raise ConfigError(
                "synthdog: corpus_en / corpus_zh must list text files for the languages zh_share asks for"
            )

    @property
    def name(self) -> str:
        return self.label or "synthdog"

    def input_paths(self) -> list[str]:
        return sorted(
            p for pattern in (*self.corpus_en, *self.corpus_zh, *self.backgrounds) for p in glob.glob(pattern)
        )

    def preflight(self) -> None:
        """Fonts installed and corpora readable, before any worker starts."""
        renderer(self)

    def chunks(self, size: int) -> list[Any]:
        step = self.documents_per_chunk
        return [[start, min(start + step, self.count)] for start in range(0, self.count, step)]

    def records(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks(0):
            yield from self.read_chunk(chunk)

    def read_chunk(self, chunk: Any) -> Iterator[dict[str, Any]]:
        start, stop = chunk
        render = renderer(self)
        for index in range(start, stop):
            doc = render.render(self.seed, index)
            yield {
                "source": self.name,
                "id": f"{index:08d}",
                "image": f"{self.name}/{index:08d}.jpg",
                "image_bytes": doc.image,
                "width": doc.width,
                "height": doc.height,
                "lines": [{"text": line.text, "quad": line.quad} for line in doc.lines],
                "language": doc.language,
            }

    def tags(self, record: dict[str, Any]) -> dict[str, str]:
        return {"language": record["language"]}


@functools.lru_cache(maxsize=4)
def renderer(source: Synthdog):  # noqa: ANN201 - curate.ocr.render.Renderer, imported late (fonts, OpenCV)
    """The source's renderer (fonts, corpora, backgrounds loaded once per process)."""
    from curate.ocr.corpus import Corpus
    from curate.ocr.fonts import available_fonts
    from curate.ocr.render import Renderer, RenderSettings, load_backgrounds

    corpora = {}
    if source.zh_share < 1:
        corpora["en"] = Corpus(source.corpus_en, "en")
    if source.zh_share > 0:
        corpora["zh"] = Corpus(source.corpus_zh, "zh")
    settings = RenderSettings(
        short_side=(source.short_side[0], source.short_side[1]),
        zh_share=source.zh_share,
        text_scale=(source.text_scale[0], source.text_scale[1]),
        max_lines=source.max_lines,
    )
    return Renderer(settings, available_fonts(), corpora, load_backgrounds(source.backgrounds))
