"""COCO captions/instances, COCO-CN Chinese captions, and RefCOCO-style region expressions."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class CocoCaptions(Source):
    """COCO `captions_*.json` (+ `instances_*.json` for grounding): one record per image."""

    kind: ClassVar[str] = "coco"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("caption", "grounding")
    captions: str
    images_dir: str
    instances: str | None = None

    def required_paths(self) -> list[str]:
        return [self.captions, self.images_dir] + ([self.instances] if self.instances else [])

    def records(self) -> Iterator[dict[str, Any]]:
        data = json.loads(Path(self.captions).read_text())
        captions: dict[int, list[str]] = defaultdict(list)
        for ann in data["annotations"]:
            captions[ann["image_id"]].append(ann["caption"])
        objects = _coco_objects(Path(self.instances)) if self.instances else {}
        folder = Path(self.images_dir)
        for img in sorted(data["images"], key=lambda i: i["id"]):
            yield {
                "source": self.name,
                "id": img["id"],
                "image": f"{self.name}/{folder.name}/{img['file_name']}",
                "image_file": str(folder / img["file_name"]),
                "width": img["width"],
                "height": img["height"],
                "captions": captions.get(img["id"], []),
                "objects": objects.get(img["id"], []),
            }


def _coco_objects(path: Path) -> dict[int, list[dict[str, Any]]]:
    """Non-crowd instances per image as {category, bbox: [x1, y1, x2, y2]} (COCO stores x, y, w, h)."""
    data = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    objects: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in data["annotations"]:
        if ann.get("iscrowd"):  # a crowd region is not one object: no box for a single phrase
            continue
        x, y, w, h = ann["bbox"]
        objects[ann["image_id"]].append({"category": names[ann["category_id"]], "bbox": [x, y, x + w, y + h]})
    return objects


@dataclass(frozen=True, kw_only=True)
class CocoCn(Source):
    """COCO-CN human-written Chinese captions (`COCO_{split}2014_{id}#{n}<TAB>sentence`): one record per image."""

    kind: ClassVar[str] = "coco_cn"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("caption",)
    captions: str
    images_dirs: tuple[str, ...] = ()  # where {id:012d}.jpg may be found (COCO 2014 ids = 2017 ids)

    def required_paths(self) -> list[str]:
        return [self.captions, *self.images_dirs]

    def records(self) -> Iterator[dict[str, Any]]:
        captions: dict[str, list[str]] = defaultdict(list)
        for line in Path(self.captions).read_text(encoding="utf-8").splitlines():
            name, _, sentence = line.partition("\t")
            if sentence:
                captions[name.split("#")[0]].append(sentence)
        for stem, sentences in captions.items():
            file_name = f"{stem.rsplit('_', 1)[-1]}.jpg"
            found = next((Path(d) / file_name for d in self.images_dirs if (Path(d) / file_name).is_file()), None)
            image = f"{self.name}/{found.parent.name}/{file_name}" if found else f"{self.name}/{stem}.jpg"
            yield {
                "source": self.name,
                "id": stem,
                "image": image,
                "image_file": str(found) if found else None,
                "captions": sentences,
            }


@dataclass(frozen=True, kw_only=True)
class Refcocos(Source):
    """RefCOCO-style records (`normal_caption`, `solution` x1,y1,x2,y2 px, width, height): one record per image."""

    kind: ClassVar[str] = "refcocos"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("ref_grounding", "grounded_caption")
    path: str
    images_dir: str | None = None  # where the `image` paths of the records resolve (their COCO split folders)

    def required_paths(self) -> list[str]:
        return [self.path] + ([self.images_dir] if self.images_dir else [])

    def records(self) -> Iterator[dict[str, Any]]:
        by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in json.loads(Path(self.path).read_text()):
            by_image[item["image"]].append(item)
        for image, items in by_image.items():
            local = Path(self.images_dir) / Path(image).name if self.images_dir else None
            yield {
                "source": self.name,
                "id": Path(image).stem,
                "image": f"{self.name}/{image}",
                "image_file": str(local) if local and local.is_file() else None,
                "width": items[0]["width"],
                "height": items[0]["height"],
                "refs": [{"expression": it["normal_caption"], "bbox": it["solution"]} for it in items],
            }
