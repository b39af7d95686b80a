"""Building task samples from source records (issue 15): the one build loop, run by the Ray workers of `curate build`
and by the bench's bare loop, and the worker that turns a chunk of a source into spool parts per task.

Every Example is checked against the format rules before it is written (a failure is a builder bug and stops
the build). Records a builder cannot use are counted per task and reason, never dropped silently.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from curate.core.chunks import ChunkWriter
from curate.core.images import TarReader, header_size, read_image_bytes, to_jpeg
from curate.sources.base import Source
from curate.tasks import TASKS, Skip
from curate.tasks.output import SAMPLE_SCHEMA, sample_row

STAGE = "build"


def build_records(
    source: Source, records: Iterator[dict[str, Any]], tars: TarReader, screen: Callable | None = None
) -> Iterator[Any]:
    """(task, row) for every sample built from `records`, or (task, Skip) for what a builder could not use; a
    `None` task marks the end of each record (with the record's tags). The one build loop: the Ray workers and
    the bench's bare loop. `screen` (curate.dedup.reference.ReferenceScreen) refuses images of reference sets."""
    builders = [TASKS[t]() for t in source.tasks]
    for record in records:
        image = _image_bytes(record, source.require_local_images, tars)
        if screen is not None and isinstance(image, bytes) and (hit := screen(image)) is not None:
            image = Skip(hit[0])
        sizes = _image_sizes(record, image)
        for builder in builders:
            for item in builder(record):
                if isinstance(item, Skip):
                    yield builder.name, item
                elif isinstance(image, Skip) and item.images:
                    yield builder.name, image
                else:
                    yield builder.name, sample_row(item, None if isinstance(image, Skip) else image, sizes)
        yield None, source.tags(record)


def _image_sizes(record: dict[str, Any], image: bytes | Skip | None) -> list[list[int]]:
    """[[width, height]] of the record's image: from the stored bytes' header, else the record's own size."""
    if isinstance(image, bytes):
        return [list(header_size(image))]
    if record.get("width") and record.get("height"):
        return [[int(record["width"]), int(record["height"])]]
    return []


def _image_bytes(record: dict[str, Any], required: bool, tars: TarReader) -> bytes | Skip | None:
    """JPEG bytes of the record's image; a Skip when it is needed but missing or undecodable."""
    if "image" not in record:
        return None
    try:
        if record.get("image_bytes") is not None:  # generated in memory (synthetic sources) or read from a shard
            return to_jpeg(record["image_bytes"])
        path = record.get("image_file")
        if not path:
            return Skip("image_not_local") if required else None
        return to_jpeg(read_image_bytes(path, record.get("image_member"), tars))
    except FileNotFoundError:
        return Skip("image_not_found")
    except Exception:  # noqa: BLE001 - undecodable image bytes are bad data
        return Skip("image_decode_error")


class BuildWorker:
    """A Ray actor that builds whole chunks: records of one source chunk -> spool parts per task."""

    def __init__(self, sources: tuple[Source, ...], out: str, screen: Callable | None = None) -> None:
        self.sources, self.out, self.screen = sources, Path(out), screen
        self.tars = TarReader()
        ChunkWriter.warm(SAMPLE_SCHEMA)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        chunk = item["chunk"]
        source_index, spec = item["spec"]
        source = self.sources[source_index]
        began = time.perf_counter()
        spool = ChunkWriter(self.out, STAGE, chunk, SAMPLE_SCHEMA)
        skipped: dict[str, Counter] = defaultdict(Counter)
        tags: dict[str, Counter] = defaultdict(Counter)
        records = 0
        for task, item in build_records(source, source.read_chunk(spec), self.tars, self.screen):
            if task is None:
                records += 1
                tags_of = item or {}
                for key, value in tags_of.items():
                    tags[key][value] += 1
            elif isinstance(item, Skip):
                skipped[task][item.reason] += 1
            else:
                spool.add(task, item)
        samples = spool.close()
        info = {"source": source.name, "records": records, "samples": samples, "skipped": skipped, "tags": tags}
        info["seconds"] = round(time.perf_counter() - began, 4)  # this chunk's work inside its worker
        return {"chunk": chunk, "info": info}


def chunk_specs(sources: tuple[Source, ...], records_per_chunk: int) -> list[Any]:
    """[source index, chunk descriptor] for every chunk of every source, in source order."""
    return [[i, chunk] for i, source in enumerate(sources) for chunk in source.chunks(records_per_chunk)]
