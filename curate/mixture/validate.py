"""`curate validate` on a `curate mix` output (issue 15): beyond the format rules of every packed sample,

- every shard reads whole, and its tar and parquet part hold the same sequences (a swapped id shows here);
- every image a sequence or a conversation references resolves to image bytes in the output;
- every packed boundary re-counts with the mixture's tokenizer and image plan (each image's tokens recomputed
  from the sizes the sample records, not read from the stored counts), and sequences fit `seq_len`;
- no sample appears twice unless its task was drawn with replacement;
- sft.json follows the finetune rules.

Problems are reported per shard, sequence or conversation; nothing is repaired.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.core import storage
from curate.core.images import JPEG_MAGIC
from curate.core.run_folder import read_run
from curate.core.shards import PARQUET_DIR, SHARD_DIR, read_parquet, read_tar
from curate.format import qwen
from curate.format import records as task_records
from curate.format.image_plan import sample_image_tokens
from curate.format.tokenizer import make_tokenizer
from curate.format.validate import check_sample
from curate.mixture.sft import check_conversation


def is_mix_output(path: Path) -> bool:
    run = read_run(path) if path.is_dir() else None
    return run is not None and run.get("command") == "mix"


def validate_mix(path: Path) -> tuple[int, dict[str, list[str]]]:
    """(samples checked, {shard, sequence key or conversation id: problems}) of a mix output folder."""
    config = (read_run(path) or {}).get("resolved_config") or {}
    counter = make_tokenizer(config.get("tokenizer"))
    seq_len = int(config.get("seq_len", 2048))
    image_plan = str(config.get("image_plan") or "qwen_vl")
    replaced = set(config.get("with_replacement") or [])
    bad: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    checked = 0
    tars = storage.glob(path / SHARD_DIR, "shard-*.tar")
    parts = {p.stem.removeprefix("part-"): p for p in storage.glob(path / PARQUET_DIR, "part-*.parquet")}
    for tar in tars:
        number = tar.stem.removeprefix("shard-")
        rows = list(_read_whole(tar, bad))
        if number not in parts:
            bad.setdefault(tar.name, []).append("its parquet part is missing")
        else:
            _compare(tar.name, rows, list(read_parquet(parts.pop(number))), bad)
        for row in rows:
            checked += len(row.get("sample_keys") or [])
            problems = _check_sequence(row, counter, seq_len, image_plan) + _duplicates(row, seen, replaced)
            if problems:
                bad.setdefault(str(row.get("key")), []).extend(problems)
    for number in sorted(parts):
        bad.setdefault(f"part-{number}.parquet", []).append("its tar shard is missing")
    sft = path / "sft.json"
    if sft.exists():
        for item_id, problems in _check_sft(sft, path):
            bad.setdefault(item_id, []).extend(problems)
    return checked, bad


def _starts_with(path: Path, magic: bytes) -> bool:
    with storage.open_read(path) as f:
        return f.read(len(magic)) == magic


def _read_whole(tar: Path, bad: dict[str, list[str]]) -> Iterator[dict[str, Any]]:
    def unreadable(_: Path, err: Exception) -> None:
        bad.setdefault(tar.name, []).append(f"unreadable or truncated tar: {type(err).__name__}: {err}")

    yield from read_tar(tar, unreadable)


def _compare(name: str, tar_rows: list[dict], part_rows: list[dict], bad: dict[str, list[str]]) -> None:
    """The tar and the parquet part of one shard must hold the same sequences, in the same order."""
    if [r.get("key") for r in tar_rows] != [r.get("key") for r in part_rows]:
        bad.setdefault(name, []).append("tar and parquet hold different sequence keys")
        return
    for tar_row, part_row in zip(tar_rows, part_rows, strict=True):
        differ = sorted(k for k in set(tar_row) | set(part_row) if tar_row.get(k) != part_row.get(k))
        if differ:
            bad.setdefault(str(tar_row.get("key")), []).append(f"tar and parquet differ in {', '.join(differ)}")


def _check_sequence(row: dict[str, Any], counter: Any, seq_len: int, image_plan: str) -> list[str]:
    try:
        samples = task_records.samples(row)
    except (KeyError, TypeError, ValueError) as err:
        return [f"not a packed sequence: {err}"]
    problems = []
    start = 0
    boundaries = row.get("boundaries") or []
    if len(boundaries) != len(samples):
        problems.append(f"{len(boundaries)} boundaries for {len(samples)} samples")
    for sample, boundary in zip(samples, boundaries, strict=False):
        key = sample["key"]
        problems += [f"{key}: {e}" for e in check_sample(sample)]
        if sample["images"] and not (sample["image"] or b"").startswith(JPEG_MAGIC):
            problems.append(f"{key}: image {sample['images'][0]!r} has no JPEG bytes in the shard")
        slots = sample_image_tokens(image_plan, sample["image_sizes"], len(sample["images"]))
        if slots is None:
            problems.append(f"{key}: image plan {image_plan} needs image sizes the sample does not record")
            start += int(boundary[1])
            continue
        if sample["image_tokens"] is not None and list(sample["image_tokens"]) != slots:
            problems.append(f"{key}: image_tokens {sample['image_tokens']} but the plan gives {slots}")
        tokens = counter.count_sample(sample["prefix"], sample["target"], slots)
        if list(boundary) != [start, tokens]:
            problems.append(f"{key}: boundary {list(boundary)} but the sample starts at {start} and counts {tokens}")
        start += tokens
    if row.get("tokens") != start or start > seq_len:
        problems.append(f"tokens {row.get('tokens')}: the samples count {start} (seq_len {seq_len})")
    return problems


def _duplicates(row: dict[str, Any], seen: set[tuple[str, str]], replaced: set[str]) -> list[str]:
    """Keys are unique within a task (one build folder per task), so (task, key) names one sample."""
    task = str(row.get("task"))
    if task in replaced:
        return []
    problems = []
    for key in row.get("sample_keys") or []:
        if (task, key) in seen:
            problems.append(f"{key} appears twice, but {task} is drawn without replacement")
        seen.add((task, key))
    return problems


def _check_sft(sft: Path, root: Path) -> Iterator[tuple[str, list[str]]]:
    try:
        items = json.loads(sft.read_text())
    except (OSError, json.JSONDecodeError) as err:
        yield "sft.json", [f"unreadable: {err}"]
        return
    for item in items:
        problems = check_conversation(item)
        for turn in item.get("conversations") or []:
            for image in qwen.IMAGE_SPAN.findall(str(turn.get("value"))):
                file = (root / image).resolve()
                inside = file.is_relative_to(root.resolve())
                if not inside or not storage.exists(file) or not _starts_with(file, JPEG_MAGIC):
                    problems.append(f"image {image!r} does not resolve to JPEG bytes in the output")
        if problems:
            yield str(item.get("id")), problems
