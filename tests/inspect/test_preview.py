"""`curate inspect` (issue 7): every output kind previews, rejected rows included, and drawn boxes sit on the
annotated objects (AC 2: de-normalized boxes checked against the source pixel boxes of ../shared/data/refs)."""

from __future__ import annotations

import json

import pytest
from helpers import REPO
from PIL import Image

from curate.__main__ import main
from curate.commands.build.config import build_from_dict
from curate.commands.build.run import run_build
from curate.format.regions import regions
from curate.inspect import api
from curate.inspect.views import collect

PREVIEWS = REPO / "out" / "test_previews"  # kept after the run so the PNGs can be looked at


def test_regions_keep_their_ref_label_and_map_back_within_a_thousandth():
    text = "<ref> two dogs</ref><box>(10,20),(300,400)</box><box>(500,0),(999,999)</box> on<box>(1,1),(2,2)</box>"
    found = regions(text)
    assert [(r.kind, r.label) for r in found] == [("box", "two dogs"), ("box", "two dogs"), ("box", "")]
    (x1, y1), (x2, y2) = found[0].pixels((640, 480))
    assert (x1, y1, x2, y2) == (6.4, 9.6, 192.0, 192.0)
    quad = regions("<ref>总计</ref><quad>(1,2),(3,4),(5,6),(7,8)</quad>")[0]
    assert quad.kind == "quad" and quad.label == "总计" and len(quad.points) == 4


@pytest.fixture(scope="module")
def refs_build(shared_data, tmp_path_factory):
    """The referring expressions whose COCO images are in shared/data, as task samples."""
    out = tmp_path_factory.mktemp("refs") / "build"
    raw = {
        "name": "refs",
        "sources": [
            {
                "refcocos": {
                    "path": str(shared_data / "refs" / "refcocos_shared.json"),
                    "images_dir": str(shared_data / "coco" / "val2017"),
                }
            }
        ],
        "output": {"dir": str(out)},
    }
    run_build(build_from_dict(raw))
    return out


def test_grounding_preview_draws_boxes_on_the_annotated_objects(refs_build, shared_data):
    by_image: dict[str, list[dict]] = {}
    for record in json.loads((shared_data / "refs" / "refcocos_shared.json").read_text()):
        by_image.setdefault(record["image"].split("/")[-1], []).append(record)
    # sample keys are refcocos-<image stem>-<index of the record among its image's records>
    truth = {f"refcocos-{name.removesuffix('.jpg')}-{i}": r for name, rs in by_image.items() for i, r in enumerate(rs)}
    PREVIEWS.mkdir(parents=True, exist_ok=True)
    for task in ("ref_grounding", "grounded_caption"):
        out = PREVIEWS / f"refs_{task}.png"
        shown, drawn = api.preview([refs_build], out, task=task, n=64)
        assert shown >= 4 and len(drawn) == shown  # one box per sample
        views = {v.key: v for v in collect(refs_build, task=task)}
        for region in drawn:
            view, record = views[region.key], truth[region.key]
            image = record["image"].split("/")[-1]
            assert record["normal_caption"].strip() in view.text
            width, height = record["width"], record["height"]
            with Image.open(shared_data / "coco" / "val2017" / image) as img:
                assert img.size == (width, height)
            (x1, y1), (x2, y2) = region.points
            sx1, sy1, sx2, sy2 = record["solution"]
            # floor to the 0..999 grid and back: never more than one grid step (dim / 1000) off
            for drawn_v, source_v, dim in ((x1, sx1, width), (y1, sy1, height), (x2, sx2, width), (y2, sy2, height)):
                assert abs(drawn_v - min(source_v, dim * 0.999)) <= dim / 1000 + 1e-6, (region, record)
        with Image.open(out) as sheet:
            assert sheet.width >= 4 * 320


def test_filter_run_previews_show_rejected_rows_with_their_reason(demo_filter_run, tmp_path):
    cfg, stats = demo_filter_run
    rejected = list(collect(cfg.out_dir, status="rejected"))
    assert len(rejected) == sum(stats["rejected"].values())
    assert all(v.status != "kept" and v.status in v.details for v in rejected)
    not_found = next(collect(cfg.out_dir, status="download"))
    assert not_found.load().image is None  # nothing was downloaded: metadata only
    clip = api.views([cfg.out_dir], status="clip_score", n=3)
    assert clip and all(v.image for v in clip) and all("clip" in " ".join(v.details) for v in clip)
    assert main(["inspect", str(cfg.out_dir), "--status", "rejected", "--n", "12", "--seed", "0",
                 "--out", str(tmp_path / "rejected.html")]) == 0  # fmt: skip
    page = (tmp_path / "rejected.html").read_text()
    assert page.count("<figure>") == 12 and "data:image/png;base64," in page


def test_every_output_kind_previews(demo_mixture, demo_filter_run, tmp_path):
    cfg, _ = demo_filter_run
    cases = {
        "filter shards": [cfg.out_dir / "shards" / "shard-000000.tar"],
        "ledger part": [cfg.out_dir / "ledger" / "part-000000.parquet"],
        "build": [demo_mixture / "t"],
        "mix": [demo_mixture / "m"],
        "mix shard": sorted((demo_mixture / "m" / "shards").glob("*.tar"))[:1],
    }
    for name, paths in cases.items():
        shown, _ = api.preview(paths, tmp_path / f"{name}.png", n=6)
        assert shown == 6, name
    _, quads = api.preview([demo_mixture / "t"], tmp_path / "ocr.png", task="ocr", n=2)
    assert quads and all(q.kind == "quad" and q.label for q in quads)
    assert {v.kind for v in api.views([demo_mixture / "m"], n=5)} == {"sequence"}


def test_bad_paths_and_outputs_fail_clearly(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["inspect", str(tmp_path / "empty")]) == 2
    assert main(["inspect", str(tmp_path), "--out", "x.jpg"]) == 2
