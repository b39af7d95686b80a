"""Real OCR annotations: SROIE receipts, ICDAR 2015 scene text, WildReceipt. One record per image with its lines
as (text, 4-point quad in pixels)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.sources.base import Source, image_size


def parse_quad_lines(text: str) -> list[dict[str, Any]]:
    """`x1,y1,x2,y2,x3,y3,x4,y4,transcript` rows (the transcript may hold commas)."""
    lines = []
    for row in text.splitlines():
        parts = row.strip().split(",", 8)
        if len(parts) < 9:
            continue
        try:
            coords = [float(v) for v in parts[:8]]
        except ValueError:
            continue
        lines.append({"text": parts[8], "quad": list(zip(coords[0::2], coords[1::2], strict=True))})
    return lines


def _record(source: str, image: Path, lines: list[dict[str, Any]], folder: str) -> dict[str, Any] | None:
    size = image_size(image)
    if size is None:
        return None
    return {
        "source": source,
        "id": image.stem,
        "image": f"{source}/{folder}/{image.name}",
        "image_file": str(image),
        "width": size[0],
        "height": size[1],
        "lines": lines,
    }


@dataclass(frozen=True, kw_only=True)
class Sroie(Source):
    """SROIE: img/<id>.jpg + box/<id>.csv."""

    kind: ClassVar[str] = "sroie"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ocr",)
    dir: str

    def required_paths(self) -> list[str]:
        return [self.dir]

    def records(self) -> Iterator[dict[str, Any]]:
        for image in sorted((Path(self.dir) / "img").glob("*.jpg")):
            box = Path(self.dir) / "box" / f"{image.stem}.csv"
            lines = parse_quad_lines(box.read_text(encoding="utf-8", errors="replace")) if box.exists() else []
            record = _record(self.name, image, lines, "img")
            if record:
                yield record


@dataclass(frozen=True, kw_only=True)
class Icdar2015(Source):
    """ICDAR 2015: imgs/img_<n>.jpg + gt/gt_img_<n>.txt (UTF-8 with BOM; `###` = unreadable)."""

    kind: ClassVar[str] = "icdar2015"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ocr",)
    dir: str

    def required_paths(self) -> list[str]:
        return [self.dir]

    def records(self) -> Iterator[dict[str, Any]]:
        for image in sorted((Path(self.dir) / "imgs").glob("*.jpg")):
            gt = Path(self.dir) / "gt" / f"gt_{image.stem}.txt"
            lines = parse_quad_lines(gt.read_text(encoding="utf-8-sig")) if gt.exists() else []
            record = _record(self.name, image, lines, "imgs")
            if record:
                yield record


@dataclass(frozen=True, kw_only=True)
class Wildreceipt(Source):
    """WildReceipt: data.txt, one JSON line per image with 8-number boxes and texts."""

    kind: ClassVar[str] = "wildreceipt"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ocr",)
    dir: str

    def required_paths(self) -> list[str]:
        return [self.dir]

    def records(self) -> Iterator[dict[str, Any]]:
        for row in (Path(self.dir) / "data.txt").read_text().splitlines():
            if not row.strip():
                continue
            item = json.loads(row)
            image = Path(self.dir) / Path(item["file_name"]).name
            lines = [
                {"text": a["text"], "quad": list(zip(a["box"][0::2], a["box"][1::2], strict=True))}
                for a in item["annotations"]
            ]
            record = _record(self.name, image, lines, ".")
            if record:
                record["image"] = f"{self.name}/{image.name}"
                yield record
