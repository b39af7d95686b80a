"""Issue 22 through the real `curate filter` path: the labelled test captions as a URL list whose rows all point
to one image served on loopback, so every row reaches the language filter; precision and recall are read back
from the ledger and must equal the in-process measure row by row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.commands.filter import run as pipeline
from curate.commands.filter.config import from_dict as filter_from_dict
from curate.filters.language_eval import KEPT, filter_rule, load_labelled

LABELS_TSV = Path(__file__).parent / "data" / "langid" / "labels.tsv"


@pytest.mark.integration
def test_labelled_test_captions_through_curate_filter(shared_data, ray_local, tmp_path):
    captions = [c for c in load_labelled(LABELS_TSV, shared_data) if c.split == "test"]
    urls = [f"hopper.jpg?row={i}" for i in range(len(captions))]  # one image; distinct URLs, distinct rows
    table = pa.table({"url": urls, "caption": [c.text for c in captions]})
    pq.write_table(table, tmp_path / "urls.parquet")
    cfg = filter_from_dict(
        {
            "name": "langid_test_rows",
            "input": {
                "url_list": {"path": str(tmp_path / "urls.parquet"), "serve_dir": str(shared_data / "images_edge")}
            },
            "download": {"processes": 1, "threads": 16, "timeout": 10, "allow_networks": ["127.0.0.1/32"]},
            "filters": [{"language": {}}],
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = pipeline.run_filter(cfg)
    assert stats["input_rows"] == len(captions)
    ledger = {r["url"]: r for r in pq.read_table(tmp_path / "out" / "ledger").to_pylist()}
    rows = [ledger[u] for u in urls]
    assert all(r["download_status"] == "success" for r in rows)  # every row reached the filter
    assert all(r["reject_reason"] in (None, "language") for r in rows)
    passed = [r["reject_reason"] is None for r in rows]
    assert passed == filter_rule()([c.text for c in captions])  # the same verdicts as in-process
    scored = [(p, c.label) for p, c in zip(passed, captions, strict=True) if c.label != "mixed"]
    tp = sum(p and label in KEPT for p, label in scored)
    precision = tp / sum(p for p, _ in scored)
    recall = tp / sum(label in KEPT for _, label in scored)
    assert precision >= 0.97 and recall >= 0.97, (precision, recall)
    assert all(r["lang_en_share"] is not None for r in rows)
