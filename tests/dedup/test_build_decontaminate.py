"""curate build refuses records whose image is in a reference set (issue 17): COCO-train records whose image is in
a "benchmark" (here a re-encoded copy of three of its photos, given as a COCO annotation file) are skipped as
contaminated:<set>, counted, and the rest are built."""

from __future__ import annotations

import io
import json

from PIL import Image

from curate.commands.build.config import build_from_dict
from curate.commands.build.run import run_build


def test_build_skips_records_whose_image_is_in_the_reference_set(shared_data, ray_local, tmp_path):
    coco = shared_data / "coco"
    captions = json.loads((coco / "annotations" / "captions_train2017.json").read_text())
    leaked = sorted(im["file_name"] for im in captions["images"])[:3]
    bench = tmp_path / "bench_images"
    bench.mkdir()
    for name in leaked:  # the benchmark holds its own re-encoded, downscaled copy of each image
        with Image.open(coco / "train2017" / name) as img:
            small = img.convert("RGB").resize((img.width * 3 // 4, img.height * 3 // 4))
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=60)
        (bench / name).write_bytes(buffer.getvalue())
    (tmp_path / "bench.json").write_text(
        json.dumps({"images": [{"id": i, "file_name": n} for i, n in enumerate(leaked)]})
    )
    source = {
        "coco": {
            "captions": str(coco / "annotations" / "captions_train2017.json"),
            "images_dir": str(coco / "train2017"),
            "tasks": ["caption"],
        }
    }
    raw = {"name": "decon", "sources": [source], "output": {"dir": str(tmp_path / "out")}}
    clean = run_build(build_from_dict({**raw, "output": {"dir": str(tmp_path / "clean")}}))
    refs = [{"name": "bench", "coco_json": str(tmp_path / "bench.json"), "images": str(bench)}]
    stats = run_build(build_from_dict({**raw, "decontaminate": {"sets": refs}}))
    skipped = stats["tasks"]["caption"]["skipped"]
    per_image = clean["tasks"]["caption"]["samples"] // len(captions["images"])
    assert skipped == {"contaminated:bench": 3 * per_image}, skipped
    assert stats["tasks"]["caption"]["samples"] == clean["tasks"]["caption"]["samples"] - 3 * per_image
