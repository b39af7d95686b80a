"""Readers that turn annotated datasets on disk into task-builder records.

SOURCES is the only name -> class table for sources; build YAML names them by these keys. Every record carries
`image` (the path written inside <img>…</img>) and, when the bytes are on disk, `image_file` (+ `image_member`
for a tar member), which the build writer copies into the shards.
"""

from curate.sources.annotations import CocoCaptions, CocoCn, Refcocos
from curate.sources.base import Source
from curate.sources.curated import Curated
from curate.sources.ocr import Icdar2015, Sroie, Wildreceipt
from curate.sources.shapes import Shapes
from curate.sources.synthdog import Synthdog
from curate.sources.text import TextFiles
from curate.sources.vqa import Pope, TextVqa

SOURCES: dict[str, type[Source]] = {
    s.kind: s
    for s in (
        CocoCaptions,
        CocoCn,
        Refcocos,
        TextVqa,
        Pope,
        Sroie,
        Icdar2015,
        Wildreceipt,
        TextFiles,
        Curated,
        Shapes,
        Synthdog,
    )  # fmt: skip
}

__all__ = ["SOURCES", "Source"]
