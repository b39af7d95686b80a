"""Read the run's input into one normalized table: row_id, key, chunk, url, caption_raw (+ local image path).

The normalized table is written once under the output dir and reused on resume, so chunk boundaries and keys
never move between attempts.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from curate.core.errors import ConfigError

URL_LIST_FORMATS = ("parquet", "csv", "jsonl")


@dataclass(frozen=True, kw_only=True)
class UrlListInput:
    """A LAION-style list of image URLs and captions, downloaded with img2dataset."""

    path: str
    format: str | None = None  # parquet | csv | jsonl; None = from the file extension
    url_col: str = "url"
    caption_col: str = "caption"
    # Serve this folder on 127.0.0.1 for the run; URLs in the list that are relative paths resolve against it.
    serve_dir: str | None = None

    def __post_init__(self) -> None:
        fmt = self.resolved_format()
        if fmt not in URL_LIST_FORMATS:
            raise ConfigError(f"input.url_list.format {fmt!r} is not valid; valid: {', '.join(URL_LIST_FORMATS)}")

    def resolved_format(self) -> str:
        if self.format:
            return self.format
        suffix = Path(self.path).suffix.lstrip(".").lower()
        return {"json": "jsonl", "pq": "parquet"}.get(suffix, suffix)


@dataclass(frozen=True, kw_only=True)
class CocoCaptionsInput:
    """Local images with COCO `captions_*.json` annotations: one input row per caption."""

    annotations: str
    images_dir: str


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    """Where the rows come from (exactly one source) and how they are cut into resumable chunks."""

    url_list: UrlListInput | None = None
    coco_captions: CocoCaptionsInput | None = None
    rows_per_chunk: int = 10000
    limit: int | None = None  # only the first N rows (quick looks at big lists)

    def __post_init__(self) -> None:
        sources = [s for s in (self.url_list, self.coco_captions) if s is not None]
        if len(sources) != 1:
            raise ConfigError("input needs exactly one source; valid: url_list, coco_captions")
        if self.rows_per_chunk < 1:
            raise ConfigError("input.rows_per_chunk must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("input.limit must be >= 1 or null")


INPUT_SCHEMA = pa.schema(
    [
        ("row_id", pa.int64()),
        ("key", pa.string()),
        ("chunk", pa.int32()),
        ("url", pa.string()),
        ("caption_raw", pa.string()),
    ]
)


def input_files(cfg: InputConfig) -> list[Path]:
    """The files whose content defines the input (for the run fingerprint)."""
    if cfg.url_list is not None:
        return _expand(cfg.url_list.path)
    assert cfg.coco_captions is not None
    return _expand(cfg.coco_captions.annotations)


def input_fingerprint(cfg: InputConfig) -> str:
    digest = hashlib.sha256()
    for path in input_files(cfg):
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def read_input(cfg: InputConfig) -> pa.Table:
    """The normalized input table, in input order, `limit` applied."""
    if cfg.url_list is not None:
        urls, captions = _read_url_list(cfg.url_list)
    else:
        assert cfg.coco_captions is not None
        urls, captions = _read_coco_captions(cfg.coco_captions)
    n = len(urls) if cfg.limit is None else min(cfg.limit, len(urls))
    row_id = pa.array(range(n), pa.int64())
    return pa.table(
        {
            "row_id": row_id,
            "key": pa.array([f"{i:09d}" for i in range(n)], pa.string()),
            "chunk": pc.cast(pc.divide(row_id, cfg.rows_per_chunk), pa.int32()),
            "url": urls.slice(0, n),
            "caption_raw": captions.slice(0, n),
        },
        schema=INPUT_SCHEMA,
    )


def _expand(pattern: str) -> list[Path]:
    files = sorted(Path(p) for p in glob.glob(pattern))
    if not files:
        raise ConfigError(f"input file {pattern} not found")
    return files


def _read_url_list(cfg: UrlListInput) -> tuple[pa.Array, pa.Array]:
    tables = [_read_table(path, cfg) for path in _expand(cfg.path)]
    table = pa.concat_tables(tables)
    return table.column(cfg.url_col).combine_chunks(), table.column(cfg.caption_col).combine_chunks()


def _read_table(path: Path, cfg: UrlListInput) -> pa.Table:
    fmt = cfg.resolved_format()
    columns = [cfg.url_col, cfg.caption_col]
    if fmt == "parquet":
        names = pq.read_schema(path).names
        _check_columns(path, names, columns)
        table = pq.read_table(path, columns=columns)
    elif fmt == "csv":
        options = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}, strings_can_be_null=True)
        table = pacsv.read_csv(path, convert_options=options)
        _check_columns(path, table.column_names, columns)
    else:
        table = pajson.read_json(path)
        _check_columns(path, table.column_names, columns)
    return pa.table({c: _as_string(table.column(c)) for c in columns})


def _as_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column if column.type == pa.string() else pc.cast(column, pa.string())


def _check_columns(path: Path, names: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ConfigError(
            f"{path}: column(s) {', '.join(missing)} not found; set input.url_list.url_col/caption_col "
            f"to one of: {', '.join(names)}"
        )


def _read_coco_captions(cfg: CocoCaptionsInput) -> tuple[pa.Array, pa.Array]:
    images_dir = Path(cfg.images_dir).resolve()
    if not images_dir.is_dir():
        raise ConfigError(f"input.coco_captions.images_dir {images_dir} not found")
    urls: list[str] = []
    captions: list[str | None] = []
    for path in _expand(cfg.annotations):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
            raise ConfigError(f"{path} is not a COCO captions file (needs 'images' and 'annotations')")
        files = {img["id"]: img["file_name"] for img in data["images"]}
        for ann in data["annotations"]:
            name = files.get(ann.get("image_id"))
            # An annotation pointing at an unknown image still becomes a row (image:not_found), never a drop.
            urls.append((images_dir / (name or f"missing-image-{ann.get('image_id')}")).as_uri())
            captions.append(ann.get("caption"))
    return pa.array(urls, pa.string()), pa.array(captions, pa.string())


def chunk_rows(rows: pa.Table, chunk: int) -> pa.Table:
    """The rows of one chunk of the normalized input."""
    return rows.filter(pc.equal(rows.column("chunk"), chunk))
