import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.commands.filter.config import from_dict
from curate.core.errors import ConfigError
from curate.ledger.inputs import read_input


def _input(source: dict, **extra) -> object:
    return from_dict({"name": "t", "input": {**source, **extra}}).input


def test_laion_parquet_and_jsonl_give_the_same_rows(shared_data):
    laion = shared_data / "laion"
    cols = {"url_col": "URL", "caption_col": "TEXT"}
    a = read_input(_input({"url_list": {"path": str(laion / "laion400m_style_rows_1000_6999.parquet"), **cols}}))
    b = read_input(_input({"url_list": {"path": str(laion / "laion400m_style_rows_1000_6999.jsonl"), **cols}}))
    assert a.num_rows == b.num_rows == 6000
    assert a.column("url").to_pylist() == b.column("url").to_pylist()
    assert a.column("caption_raw").to_pylist() == b.column("caption_raw").to_pylist()


def test_csv_glob_keys_chunks_and_limit(tmp_path):
    for n in range(2):
        (tmp_path / f"part{n}.csv").write_text("link,alt\nhttp://a/1.jpg,a cat\nhttp://a/2.jpg,\n")
    cfg = _input(
        {"url_list": {"path": str(tmp_path / "*.csv"), "url_col": "link", "caption_col": "alt"}},
        rows_per_chunk=3,
        limit=3,
    )
    rows = read_input(cfg)
    assert rows.column("key").to_pylist() == ["000000000", "000000001", "000000002"]
    assert rows.column("chunk").to_pylist() == [0, 0, 0]
    assert rows.column("caption_raw").to_pylist() == ["a cat", None, "a cat"]


def test_missing_column_names_the_available_ones(tmp_path):
    pq.write_table(pa.table({"URL": ["x"], "TEXT": ["y"]}), tmp_path / "l.parquet")
    with pytest.raises(ConfigError, match="column\\(s\\) url, caption not found.*one of: URL, TEXT"):
        read_input(_input({"url_list": {"path": str(tmp_path / "l.parquet")}}))


def test_coco_captions_one_row_per_caption_with_file_uris(shared_data):
    coco = shared_data / "coco"
    rows = read_input(
        _input(
            {
                "coco_captions": {
                    "annotations": str(coco / "annotations" / "captions_val2017_shared20.json"),
                    "images_dir": str(coco / "val2017"),
                }
            }
        )
    )
    data = json.loads((coco / "annotations" / "captions_val2017_shared20.json").read_text())
    assert rows.num_rows == len(data["annotations"]) == 100
    assert all(u.startswith("file:///") and u.endswith(".jpg") for u in rows.column("url").to_pylist())
