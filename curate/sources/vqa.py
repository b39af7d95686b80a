"""VQA sets: TextVQA (several human answers per question) and POPE (yes/no object probes on COCO)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.sources.base import Source


@dataclass(frozen=True, kw_only=True)
class TextVqa(Source):
    """TextVQA JSON ({data: [{image, question, answers, flickr_url}]}): one record per question."""

    kind: ClassVar[str] = "textvqa"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("vqa",)
    path: str
    images_dir: str | None = None  # without it, <img> holds the Flickr URL (Qwen-VL accepts URLs, §4.5)

    def required_paths(self) -> list[str]:
        return [self.path] + ([self.images_dir] if self.images_dir else [])

    def records(self) -> Iterator[dict[str, Any]]:
        for i, item in enumerate(json.loads(Path(self.path).read_text())["data"]):
            local = Path(self.images_dir) / item["image"] if self.images_dir else None
            found = local is not None and local.is_file()
            yield {
                "source": self.name,
                "id": i,
                "question": item["question"],
                "answers": item["answers"],
                "image": f"{self.name}/{item['image']}" if found else item["flickr_url"],
                "image_file": str(local) if found else None,
            }


@dataclass(frozen=True, kw_only=True)
class Pope(Source):
    """POPE jsonl ({question_id, image: COCO_val2014_<id>.jpg, text, label}): one record per question."""

    kind: ClassVar[str] = "pope"
    allowed_tasks: ClassVar[tuple[str, ...]] = ("vqa",)
    path: str
    images_dirs: tuple[str, ...] = ()  # folders holding {id:012d}.jpg (COCO 2014 ids = 2017 ids)

    def required_paths(self) -> list[str]:
        return [self.path, *self.images_dirs]

    def records(self) -> Iterator[dict[str, Any]]:
        for line in Path(self.path).read_text().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            file_name = f"{Path(item['image']).stem.rsplit('_', 1)[-1]}.jpg"
            found = next((Path(d) / file_name for d in self.images_dirs if (Path(d) / file_name).is_file()), None)
            yield {
                "source": self.name,
                "id": item["question_id"],
                "question": item["text"],
                "answers": [item["label"]],
                "image": f"{self.name}/{item['image']}",
                "image_file": str(found) if found else None,
            }
