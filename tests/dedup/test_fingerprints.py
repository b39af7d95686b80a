"""Fingerprints and reference sets (issue 17): pixel digests ignore container bytes, pHash/dHash move little
under re-encodes and resizes, reference sets come from folders, tar shards and COCO files."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from curate.core.errors import ConfigError
from curate.dedup.hashes import bytes_digest, dhash, hamming, phash, pixels_digest, window_phashes
from curate.dedup.reference import ReferenceSet, nearest_reference, reference_files, reference_table


def _photo(shared_data, index: int = 0) -> Image.Image:
    return Image.open(sorted((shared_data / "coco" / "train2017").glob("*.jpg"))[index]).convert("RGB")


def _png(img: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def test_pixel_digest_is_equal_for_the_same_pixels_in_other_bytes(shared_data):
    img = _photo(shared_data).resize((96, 64))
    a, b = _png(img, compress_level=1), _png(img, compress_level=9)
    assert bytes_digest(a) != bytes_digest(b)
    assert pixels_digest(Image.open(io.BytesIO(a))) == pixels_digest(Image.open(io.BytesIO(b)))
    assert pixels_digest(img) != pixels_digest(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


@pytest.mark.parametrize("hasher", [phash, dhash])
def test_perceptual_hashes_move_little_under_resize_and_far_between_photos(shared_data, hasher):
    img, other = _photo(shared_data, 0), _photo(shared_data, 1)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=40)
    small = Image.open(io.BytesIO(buffer.getvalue())).resize((img.width // 2, img.height // 2))
    assert hamming(hasher(img), hasher(small)) <= 4
    assert hamming(hasher(img), hasher(other)) >= 10


def test_a_crop_is_near_one_of_the_windows_of_its_original(shared_data):
    img = _photo(shared_data, 2)
    w, h = img.size
    crop = img.crop((int(0.05 * w), int(0.025 * h), w - int(0.025 * w), h))
    windows = window_phashes(img)
    assert len(windows) == 225 and windows.dtype == np.int64
    assert hamming(windows, phash(crop)).min() <= 2 < hamming(phash(img), phash(crop))


def test_reference_sets_from_a_folder_tar_shards_and_a_coco_file(shared_data, tmp_path):
    photos = sorted((shared_data / "coco" / "val2017").glob("*.jpg"))[:3]
    with tarfile.open(tmp_path / "bench-000.tar", "w") as tar:
        for p in photos:
            tar.add(p, arcname=f"sample/{p.name}")
    (tmp_path / "coco.json").write_text(json.dumps({"images": [{"file_name": p.name} for p in photos]}))
    sets = [
        ReferenceSet(name="folder", folder=str(photos[0].parent)),
        ReferenceSet(name="shards", shards=(str(tmp_path / "bench-*.tar"),)),
        ReferenceSet(name="coco", coco_json=str(tmp_path / "coco.json"), images=str(photos[0].parent)),
    ]
    tables = [reference_table(ref, "phash", tmp_path / "cache") for ref in sets]
    assert [t.num_rows for t in tables[1:]] == [3, 3] and tables[0].num_rows == 20
    assert tables[1].column("phash").to_pylist() == tables[2].column("phash").to_pylist()
    assert tables[1].column("ref_id").to_pylist()[0] == f"shards:{photos[0].name}"
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 3  # hashed once, then read from the cache
    hashes = np.array(tables[2].column("phash").to_pylist()[:1] + [0], np.int64)
    best, dist = nearest_reference(hashes, [None, None], tables[2], "phash", 4)
    assert best.tolist() == [0, -1] and dist[0] == 0
    table = pa.table({"ref_id": ["x:a"], "sha256": ["abc"], "phash": pa.array([5], pa.int64())})
    best, _ = nearest_reference(np.array([1 << 40], np.int64), ["abc"], table, "phash", 2)
    assert best.tolist() == [0]  # identical bytes match whatever the hash says
    with pytest.raises(ConfigError, match="exactly one of folder, shards, coco_json"):
        ReferenceSet(name="two", folder="a", coco_json="b")
    with pytest.raises(ConfigError, match="are not in"):
        reference_files(ReferenceSet(name="missing", coco_json=str(tmp_path / "coco.json"), images=str(tmp_path)))
