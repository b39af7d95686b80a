"""Samples of any curate output as `View`s: one image (or none) plus the text and metadata to show beside it.

Reads a filter run (its ledger: kept and rejected rows, bytes from the raw download shards when they were kept),
a `curate build` / `curate ocr` output (task samples), a `curate mix` output (each sample of each packed
sequence), or single .tar / .parquet files of any of these.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curate.core.errors import ConfigError
from curate.core.images import TarReader, read_image_bytes
from curate.core.shards import output_files, read_file
from curate.format import records as task_records

SCORE_FORMATS = {
    "clip_score": "clip {:.3f}",
    "lang": "lang {}",
    "lang_score": "{:.2f}",
    "lang_en_share": "{:.2f}",
    "aspect_ratio": "aspect {:.2f}",
}


@dataclass
class View:
    key: str
    kind: str  # ledger | task | sequence
    task: str  # task name; for ledger rows "kept" or the reject reason's filter
    text: str  # the caption, or prefix + target: the regions are parsed from it
    image: bytes | None = None
    status: str | None = None  # ledger rows: "kept" or the reject reason
    details: list[str] = field(default_factory=list)
    image_source: tuple[str, str | None] | None = None  # (file, tar member): bytes read only when drawn
    dup_of: str | None = None  # ledger rows removed by a dedup stage: the key (or reference image) kept instead

    def load(self, tars: TarReader | None = None) -> View:
        """Read the image bytes from `image_source` (ledger rows); missing bytes leave a metadata-only view."""
        if self.image is None and self.image_source:
            try:
                self.image = read_image_bytes(*self.image_source, tars or TarReader())
            except (OSError, tarfile.TarError):
                self.image_source = None  # not kept (or moved): the tile shows the metadata only
        return self


def sample(views: Iterator, n: int, seed: int | None, load: bool = True) -> list:
    """The first n views, or (seed given) n drawn uniformly by reservoir sampling; image bytes loaded."""
    import random

    chosen: list[View] = []
    rng = random.Random(seed)
    for i, view in enumerate(views):
        if seed is None and i >= n:
            break
        if len(chosen) < n:
            chosen.append(view)
        elif (j := rng.randrange(i + 1)) < n:
            chosen[j] = view
    if not load:
        return chosen
    tars = TarReader()
    return [v.load(tars) for v in chosen]


def collect(path: Path, *, task: str | None = None, status: str | None = None) -> Iterator[View]:
    """Every view under `path`, optionally only one task (or, for ledgers, 'kept', 'rejected' or a reason)."""
    for view in _views(path):
        if task and view.task != task:
            continue
        if status and not _status_matches(view.status, status):
            continue
        yield view


DEDUP_STATUSES = ("duplicate", "contaminated")


def is_pair_status(status: str | None) -> bool:
    """--status duplicate / contaminated (or one of their reasons): each row is shown beside its partner."""
    return bool(status) and status.split(":")[0] in DEDUP_STATUSES


def collect_pairs(path: Path, status: str) -> Iterator[tuple[View, View]]:
    """(duplicate row, the row kept in its place) for a filter run's dedup decisions; for contaminated rows the
    partner is the reference image."""
    if not (path.is_dir() and (path / "ledger").is_dir()):
        raise ConfigError(f"--status {status} shows dedup decisions: {path} is not a filter run folder")
    chosen = [v for v in _ledger_views(sorted((path / "ledger").glob("part-*.parquet")), keep_dup=True)]
    by_key = {v.key: v for v in chosen}
    references = _reference_paths(path)
    for view in chosen:
        if not _status_matches(view.status, status) or view.dup_of is None:
            continue
        partner = by_key.get(view.dup_of)
        if partner is None and view.dup_of in references:
            source = references[view.dup_of]
            where = tuple(source.split("::", 1)) if "::" in source else (source, None)
            partner = View(view.dup_of, "ledger", "pairs", "", None, "reference", [], where)
        if partner is None:
            continue
        role = (
            f"the reference image {view.key} matched"
            if partner.status == "reference"
            else f"kept in place of {view.key}"
        )
        partner = View(partner.key, partner.kind, partner.task, partner.text, None, partner.status,
                       [role, *partner.details], partner.image_source)  # fmt: skip
        yield view, partner


def _reference_paths(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in sorted((path / "dedup" / "reference").glob("*.parquet")):
        table = pq.read_table(part)
        if "source" in table.column_names:
            found.update(zip(table["ref_id"].to_pylist(), table["source"].to_pylist(), strict=True))
    return found


def _status_matches(value: str | None, wanted: str) -> bool:
    if value is None:
        return False
    if wanted == "rejected":
        return value != "kept"
    return value == wanted or value.split(":")[0] == wanted


def _views(path: Path) -> Iterator[View]:
    if not path.exists():
        raise ConfigError(f"{path} not found")
    if path.is_dir() and (path / "ledger").is_dir():
        yield from _ledger_views(sorted((path / "ledger").glob("part-*.parquet")))
        return
    if path.is_file() and path.suffix == ".parquet" and "reject_reason" in pq.read_schema(path).names:
        yield from _ledger_views([path])
        return
    files = output_files(path, "parquet") or output_files(path, "tar")
    if not files:
        raise ConfigError(f"{path} holds no curate output (ledger/, shards/*.tar or parquet/part-*.parquet)")
    for file in files:
        for row in read_file(file):
            yield from _row_views(row)


def _row_views(row: dict[str, Any]) -> Iterator[View]:
    if not task_records.is_task_record(row):  # a kept sample of a filter run
        caption = row.get("caption") or ""
        yield View(row["key"], "ledger", "pairs", caption, row.get("image"), "kept", _scores(row))
        return
    found = task_records.samples(row)
    for i, s in enumerate(found):
        packed = s["sequence"] is not None
        details = [f"sequence {s['sequence']} sample {i + 1}/{len(found)}", s["key"]] if packed else []
        kind = "sequence" if packed else "task"
        yield View(s["key"], kind, s["task"], s["prefix"] + s["target"], s["image"], details=details)


def _ledger_views(parts: list[Path], keep_dup: bool = False) -> Iterator[View]:
    for part in parts:
        for row in pq.read_table(part).to_pylist():
            status = row["reject_reason"] or "kept"
            text = row.get("caption") or row.get("caption_raw") or ""
            details = [status, *_scores(row)]
            if row.get("dup_of"):
                details.append(f"dup of {row['dup_of']} at distance {row['dup_distance']:.3g}")
            if row.get("error_message"):
                details.append(str(row["error_message"])[:120])
            source = (row["image_path"], row.get("image_member")) if row.get("image_path") else None
            yield View(row["key"], "ledger", "pairs", text, None, status, details, source, row.get("dup_of"))


def _scores(row: dict[str, Any]) -> list[str]:
    parts = []
    if row.get("width") and row.get("height"):
        parts.append(f"{row['width']}x{row['height']}")
    for column, fmt in SCORE_FORMATS.items():
        if row.get(column) is not None:
            parts.append(fmt.format(row[column]))
    return [" · ".join(parts)] if parts else []
