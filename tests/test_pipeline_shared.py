"""Real data from ../shared/data through the whole pipeline: COCO images with their captions (local ingest) and
every image-decoding edge case, both as local files and downloaded by img2dataset from a loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.clip.models import TINY_MODEL
from curate.commands.filter import run as pipeline
from curate.commands.filter.config import from_dict as filter_from_dict

EDGE_CAPTION = "a photo of a test image with several objects"


def _filters(tiny_clip: Path) -> list:
    # COCO captions are not the demo CLIP's subjects: min_score -1 keeps every scored row, so the stage runs and
    # scores everything without deciding anything here.
    return [
        {"min_side": {"min_pixels": 64}},
        {"max_aspect_ratio": {"max_ratio": 3.0}},
        "caption_text",
        {"language": {}},
        {"clip_score": {"model": TINY_MODEL, "pretrained": str(tiny_clip), "min_score": -1.0}},
    ]


@pytest.mark.smoke
def test_coco_images_with_real_captions_go_through_the_whole_pipeline(shared_data, tiny_clip, ray_local, tmp_path):
    coco = shared_data / "coco"
    cfg = filter_from_dict(
        {
            "name": "coco",
            "input": {
                "coco_captions": {
                    "annotations": str(coco / "annotations" / "captions_train2017.json"),
                    "images_dir": str(coco / "train2017"),
                },
                "rows_per_chunk": 100,
            },
            "filters": _filters(tiny_clip),
            "output": {"dir": str(tmp_path / "coco"), "samples_per_shard": 64},
        }
    )
    stats = pipeline.run_filter(cfg)
    assert stats["input_rows"] == 250  # 50 images x 5 captions
    assert stats["kept_rows"] + sum(stats["rejected"].values()) == 250
    assert stats["rejected"] == {"max_aspect_ratio": 5}  # 000000391895.jpg is 640x213 (3.004:1); the rest pass
    ledger = pq.read_table(tmp_path / "coco" / "ledger")
    kept = ledger.filter(pa.compute.is_null(ledger.column("reject_reason"))).to_pylist()
    assert all(r["lang"] == "en" and r["clip_score"] is not None and r["width"] >= 64 for r in kept)
    annotations = json.loads((coco / "annotations" / "captions_train2017.json").read_text())
    sizes = {img["file_name"]: (img["width"], img["height"]) for img in annotations["images"]}
    for row in kept:  # probed sizes agree with COCO's own annotation
        assert (row["width"], row["height"]) == sizes[Path(row["image_path"]).name]


def _edge_files(shared_data: Path) -> list[Path]:
    files = sorted(p for p in (shared_data / "images_edge").iterdir() if p.is_file())
    assert len(files) >= 20
    return files


def test_every_edge_case_image_is_kept_or_gets_a_reason_local(shared_data, tiny_clip, ray_local, tmp_path):
    files = _edge_files(shared_data)
    annotations = {
        "images": [{"id": i, "file_name": p.name} for i, p in enumerate(files)],
        "annotations": [{"id": i, "image_id": i, "caption": EDGE_CAPTION} for i in range(len(files))],
    }
    (tmp_path / "captions.json").write_text(json.dumps(annotations))
    cfg = filter_from_dict(
        {
            "name": "edge_local",
            "input": {
                "coco_captions": {
                    "annotations": str(tmp_path / "captions.json"),
                    "images_dir": str(shared_data / "images_edge"),
                }
            },
            "filters": _filters(tiny_clip),
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = pipeline.run_filter(cfg)
    rows = {Path(r["image_path"]).name: r for r in pq.read_table(tmp_path / "out" / "ledger").to_pylist()}
    assert len(rows) == len(files) == stats["input_rows"]
    for name in ("broken.png", "zero_width.gif", "mmocr_broken.jpg", "truncated_jpeg.jpg"):
        assert rows[name]["reject_reason"] == "image:decode_error", rows[name]
    assert rows["200x32_rgb.png"]["reject_reason"] == "min_side"  # 32 px high: the cheaper rule fires first
    assert rows["tiny.png"]["reject_reason"] == "min_side"
    assert (rows["hopper_orientation_6.jpg"]["width"], rows["hopper_orientation_6.jpg"]["height"]) == (128, 128)
    for name in ("hopper.jpg", "pil_sample_cmyk.jpg", "hopper.webp", "transparent.png", "hopper.gif", "iss634.gif"):
        assert rows[name]["reject_reason"] is None, rows[name]
    assert _shard_members(tmp_path / "out") == stats["kept_rows"]


def test_every_edge_case_image_is_kept_or_gets_a_reason_downloaded(shared_data, tiny_clip, ray_local, tmp_path):
    files = _edge_files(shared_data)
    urls = [p.name for p in files] + ["does-not-exist.jpg"]
    pq.write_table(pa.table({"url": urls, "caption": [EDGE_CAPTION] * len(urls)}), tmp_path / "urls.parquet")
    cfg = filter_from_dict(
        {
            "name": "edge_http",
            "input": {
                "url_list": {"path": str(tmp_path / "urls.parquet"), "serve_dir": str(shared_data / "images_edge")}
            },
            "download": {"processes": 1, "threads": 4, "timeout": 5, "allow_networks": ["127.0.0.1/32"]},
            "filters": _filters(tiny_clip),
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = pipeline.run_filter(cfg)
    rows = {r["url"]: r for r in pq.read_table(tmp_path / "out" / "ledger").to_pylist()}
    assert len(rows) == len(urls) == stats["input_rows"]
    assert rows["does-not-exist.jpg"]["reject_reason"] == "download:not_found"
    for name in ("broken.png", "zero_width.gif"):
        assert rows[name]["reject_reason"] == "image:decode_error", rows[name]
    assert rows["hopper.jpg"]["reject_reason"] is None
    assert rows["hopper.jpg"]["download_status"] == "success"
    assert _shard_members(tmp_path / "out") == stats["kept_rows"]


def _shard_members(out: Path) -> int:
    import webdataset as wds

    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    return sum(1 for _ in wds.WebDataset(shards, shardshuffle=False)) if shards else 0
