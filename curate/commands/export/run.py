"""`curate export SRC --format hf|llava|qwen2vl|deepseek_vl2 --out DIR`: stream every task sample of a build
output into another tool's layout, one source file at a time (memory holds one parquet row group of images).

- `hf`: `data/train-NNNNN-of-MMMMM.parquet` (one per source part; `image` as the Hugging Face Image feature
  {bytes, path}) and `README.md`, the dataset card (curate.export.card). Loads with
  `datasets.load_dataset(DIR)`.
- `llava`: `llava.json` (curate.export.llava) and `images/<path inside <img>>`.
- `qwen2vl`, `deepseek_vl2`: `qwen2vl.json` / `deepseek_vl2.json` (curate.export.chat) and `images/` the same way.

Every file is written under a temporary name and renamed; the card (hf) or the JSON (llava) comes last, so a
folder holding it is complete. An existing DIR is refused unless --overwrite.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import write_atomic, write_bytes_atomic
from curate.core.errors import ConfigError
from curate.core.log import progress
from curate.core.run_folder import read_run
from curate.core.shards import output_files, read_parquet
from curate.core.storage import remove_tree
from curate.export.card import HF_SCHEMA

log = logging.getLogger(__name__)
FORMATS = ("hf", "llava", "qwen2vl", "deepseek_vl2")
ROWS_PER_GROUP = 64


def run_export(src: Path, fmt: str, out: Path, overwrite: bool = False) -> dict[str, Any]:
    """Export `src` (a build output, or any folder of task shards) to `out`; returns the measured counts."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}; valid: {', '.join(FORMATS)}")
    inside = out.resolve() == src.resolve() or src.resolve().is_relative_to(out.resolve())
    if inside or out.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"--out {out} must lie outside {src} (and not hold it)")
    made_by = (read_run(src) or {}).get("command")
    if made_by not in (None, "build", "ocr"):
        raise ConfigError(f"{src} is the output of `curate {made_by}`; export takes task samples (a build output)")
    parts = output_files(src, "parquet")
    if not parts:
        raise ConfigError(f"{src} holds no task samples (parquet parts of a curate build output)")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} exists and is not empty; pass --overwrite to replace it")
        remove_tree(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, Any] = {"samples": 0, "images": 0, "bytes": 0, "tasks": Counter(), "sources": Counter()}
    if fmt == "hf":
        _export_hf(src, parts, out, counts)
    else:
        _export_conversations(src, parts, out, counts, fmt)
    counts["tasks"], counts["sources"] = dict(counts["tasks"]), dict(counts["sources"])
    return counts


def _count(counts: dict[str, Any], row: dict[str, Any]) -> None:
    counts["samples"] += 1
    counts["images"] += 1 if row.get("image") is not None else 0
    counts["tasks"][row["task"]] += 1
    counts["sources"][row["source"]] += 1


def _export_hf(src: Path, parts: list[Path], out: Path, counts: dict[str, Any]) -> None:
    from curate.export.card import card

    with progress(len(parts), "export hf", unit="parts") as bar:
        for i, part in enumerate(parts):
            path = out / "data" / f"train-{i:05d}-of-{len(parts):05d}.parquet"

            def write(tmp: Path, part: Path = part) -> None:
                with pq.ParquetWriter(tmp, HF_SCHEMA) as writer:  # its size is counted before the upload
                    batch: list[dict[str, Any]] = []
                    for row in read_parquet(part):
                        _count(counts, row)
                        image = row.get("image")
                        name = (row.get("images") or [None])[0]
                        batch.append({**{k: row.get(k) for k in HF_SCHEMA.names if k != "image"},
                                      "image": None if image is None else {"bytes": image, "path": name}})  # fmt: skip
                        if len(batch) == ROWS_PER_GROUP:
                            writer.write_table(pa.Table.from_pylist(batch, HF_SCHEMA))
                            batch = []
                    if batch:
                        writer.write_table(pa.Table.from_pylist(batch, HF_SCHEMA))
                counts["bytes"] += tmp.stat().st_size

            write_atomic(path, write)
            bar.update(1)
    write_bytes_atomic(out / "README.md", card(src, counts, "data/train-*.parquet").encode())


def _conversation_format(fmt: str) -> tuple[Callable, Callable]:
    """(record, problems) of a conversation format: a sample's record, and what its trainer's loader would refuse."""
    from curate.export import chat, llava

    return {
        "llava": (llava.record, llava.loader_problems),
        "qwen2vl": (chat.qwen2vl_record, chat.qwen2vl_problems),
        "deepseek_vl2": (chat.deepseek_record, chat.deepseek_problems),
    }[fmt]


def _export_conversations(src: Path, parts: list[Path], out: Path, counts: dict[str, Any], fmt: str) -> None:
    """`<fmt>.json` (a JSON list, one record per sample) and images/. Each record passes its loader's rules as it
    is written (images on disk, image tokens equal to images), or the export stops naming the sample."""
    record, problems = _conversation_format(fmt)
    written: set[Path] = set()  # an image several samples share (one scene, several tasks) is written once

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f, progress(len(parts), f"export {fmt}", unit="parts") as bar:
            f.write("[")
            first = True
            for part in parts:
                for row in read_parquet(part):
                    _count(counts, row)
                    paths = []
                    if row.get("image") is not None:
                        relative = Path("images") / (row.get("images") or [f"{row['key']}.jpg"])[0]
                        if not relative.is_relative_to("images") or ".." in relative.parts:
                            raise ConfigError(f"{row['key']}: image path {relative} leaves the export folder")
                        if relative not in written:
                            write_bytes_atomic(out / relative, row["image"])
                            counts["bytes"] += len(row["image"])
                            written.add(relative)
                        paths.append(relative.as_posix())
                    item = record(row, paths)
                    wrong = problems(item, out)
                    if wrong:
                        raise RuntimeError(f"{row['key']}: the {fmt} record breaks its loader's rules: {wrong}")
                    f.write(("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False))
                    first = False
                bar.update(1)
            f.write("\n]\n")

    write_atomic(out / f"{fmt}.json", write)
    counts["bytes"] += (out / f"{fmt}.json").stat().st_size
