"""Format rules for a task sample, after the parse rules of QwenLM/Qwen-VL (QWENVL_FORMAT.md §4.1-4.4, §8).

check_sample returns every rule a sample breaks; an empty list means the sample is valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.core.shards import output_files, read_file
from curate.format import qwen
from curate.format import records as task_records

FIELDS = {"task": str, "source": str, "key": str, "images": list, "prefix": str, "target": str}


def check_sample(sample: dict[str, Any]) -> list[str]:
    """Every format rule the sample breaks."""
    errors = [
        f"field {name} missing or not {kind.__name__}"
        for name, kind in FIELDS.items()
        if not isinstance(sample.get(name), kind)
    ]
    if errors:
        return errors
    if sample["task"] not in qwen.TASK_NAMES:
        errors.append(f"unknown task {sample['task']!r}")
    text = sample["prefix"] + sample["target"]
    if not sample["target"].endswith(qwen.EOS) or text.count(qwen.EOS) != 1:
        errors.append("target must end with <|endoftext|>, which appears nowhere else")
    if qwen.CHAT_TOKEN.search(text):
        errors.append("chat/padding special token in a pre-training sample")
    errors += _check_tags(text, sample["images"])
    return errors


def _check_tags(text: str, images: list[str]) -> list[str]:
    errors, paths, open_tag, open_at = [], [], None, 0
    for m in qwen.TAG.finditer(text):
        tag = m.group()
        if not tag.startswith("</"):
            if open_tag:
                errors.append(f"{tag} inside <{open_tag}>: tags never nest")
            open_tag, open_at = tag[1:-1], m.end()
            if tag == qwen.QUAD_START and not text[: m.start()].endswith(qwen.REF_END):
                errors.append("<quad> must follow </ref> directly")
        elif open_tag != tag[2:-1]:
            errors.append(f"{tag} without its opening tag")
            open_tag = None
        else:
            body = text[open_at : m.start()]
            open_tag = None
            if tag == qwen.IMG_END:
                paths.append(body)
            errors += _check_body(tag, body, text[m.end() :])
    if open_tag:
        errors.append(f"<{open_tag}> never closed")
    if paths != list(images):
        errors.append(f"images {images} do not match the <img> paths {paths}")
    return errors


def _check_body(closing_tag: str, body: str, after: str) -> list[str]:
    """Rules for what a closed tag holds and what must follow it."""
    if closing_tag == qwen.BOX_END:
        return _check_box(body)
    if closing_tag == qwen.QUAD_END and not qwen.QUAD_BODY.fullmatch(body):
        return [f"quad {body!r} is not four (x,y) integer corners"]
    if closing_tag == qwen.IMG_END and (len(body.encode()) > qwen.MAX_IMAGE_PATH_BYTES or "<" in body):
        return [f"image path {body[:40]!r} over 256 bytes or holds '<'"]
    if closing_tag == qwen.REF_END and not after.startswith((qwen.BOX_START, qwen.QUAD_START)):
        return ["</ref> must be followed directly by <box> or <quad>"]
    return []


def _check_box(body: str) -> list[str]:
    m = qwen.BOX_BODY.fullmatch(body)
    if not m:
        return [f"box {body!r} is not (x1,y1),(x2,y2) with four integers and no spaces"]
    x1, y1, x2, y2 = map(int, m.groups())
    if max(x1, y1, x2, y2) > 999 or x1 > x2 or y1 > y2:
        return [f"box {body!r} outside 0..999 or corners out of order"]
    return []


def iter_samples(path: Path) -> Iterator[dict[str, Any]]:
    """Task samples of a .tar shard, a .parquet part, or every shard and part of an output folder (the samples
    packed in a mix sequence one by one)."""
    if path.is_file() and path.suffix not in (".tar", ".parquet"):
        raise ValueError(f"{path}: expected a .tar shard, a .parquet file or a folder")
    files = [path] if path.is_file() else output_files(path, "tar") + output_files(path, "parquet")
    for file in files:
        for row in read_file(file):
            yield from task_records.samples(row) if task_records.is_task_record(row) else [row]


def validate_paths(paths: list[Path]) -> tuple[int, dict[str, list[str]]]:
    """(samples checked, {key: errors}) over all given shards / parquet files / folders."""
    checked, bad = 0, {}
    for path in paths:
        for sample in iter_samples(path):
            checked += 1
            errors = check_sample(sample)
            if errors:
                bad[str(sample.get("key"))] = errors
    return checked, bad
