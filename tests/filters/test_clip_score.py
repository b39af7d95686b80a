import pyarrow.parquet as pq
import pytest
from helpers import make_batch

from curate.clip.models import TINY_MODEL, check_weights, check_weights_in_child
from curate.core.errors import ConfigError
from curate.filters.clip_score import ClipScore


def test_offline_tag_fails_fast_with_what_to_do_instead():
    with pytest.raises(ConfigError, match=r"not available offline.*curate train-clip.*skip: true"):
        check_weights("ViT-B-32", "openai")


def test_missing_checkpoint_and_unknown_tag_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        check_weights(TINY_MODEL, str(tmp_path / "missing.pt"))
    with pytest.raises(ConfigError, match="is not a tag of ViT-B-32; tags: openai"):
        check_weights("ViT-B-32", "no-such-tag")
    with pytest.raises(ConfigError, match="needs trained weights"):
        check_weights(TINY_MODEL, None)
    with pytest.raises(ConfigError, match="not an open_clip model"):
        check_weights("ViT-Q-99", "openai")


def test_the_filter_preflight_checks_weights_in_a_child_with_the_same_errors(tmp_path, tiny_clip):
    with pytest.raises(ConfigError, match=r"^CLIP checkpoint .*missing.pt not found\. Point clip_score"):
        check_weights_in_child(TINY_MODEL, str(tmp_path / "missing.pt"))
    with pytest.raises(ConfigError, match="needs trained weights"):
        ClipScore(model=TINY_MODEL, pretrained=None).preflight()
    check_weights_in_child(TINY_MODEL, str(tiny_clip))  # real weights: no error


def _demo_rows(demo_input, kinds, n):
    table = pq.read_table(demo_input / "urls.parquet").to_pylist()
    rows = [r for r in table if r["demo_kind"] in kinds][:n]
    return make_batch(
        image_path=[str(demo_input / "files" / r["url"]) for r in rows],
        caption=[r["caption"] for r in rows],
    )


def test_matched_pairs_score_higher_than_mismatched(demo_input, tiny_clip):
    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    good = clip(_demo_rows(demo_input, {"good_en", "good_zh"}, 40))
    bad = clip(_demo_rows(demo_input, {"mismatched"}, 40))
    assert good["clip_score"].astype(float).min() > bad["clip_score"].astype(float).max()
    assert good["reject_reason"].isna().all()
    assert (bad["reject_reason"] == "clip_score").all()


def test_undecodable_image_is_a_reason_not_a_crash(demo_input, tiny_clip, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"<html>not an image</html>")
    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    batch = _demo_rows(demo_input, {"good_en"}, 2)
    batch.loc[1, "image_path"] = str(broken)
    out = clip(batch)
    assert out["reject_reason"].tolist() == [None, "image:decode_error"]


def test_missing_caption_is_scored_not_a_crash(demo_input, tiny_clip):
    """A pipeline without caption_text hands CLIP a missing caption as pandas NA (found by `curate bench`)."""
    import pandas as pd

    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    batch = _demo_rows(demo_input, {"good_en"}, 2)
    batch["caption"] = pd.array([pd.NA, batch["caption"].iloc[1]], dtype="string")
    out = clip(batch)
    assert out["clip_score"].notna().all()


def test_cpu_threads_follow_config_and_actor_count(demo_input, tiny_clip):
    """Ray sets OMP_NUM_THREADS=1 in a 1-CPU actor; the filter sets torch's threads itself (issue 9, P1)."""
    import os

    import torch

    before = torch.get_num_threads()
    try:
        assert ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), threads=3).cpu_threads() == 3
        cores = len(os.sched_getaffinity(0))
        two_actors = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), concurrency=2)
        assert two_actors.cpu_threads() == max(1, cores // 2)
        clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), device="cpu", threads=1)
        clip.setup()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="threads must be >= 0"):
        ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), threads=-1)


def _pixel_rows(demo_input, tmp_path, n=24):
    import pyarrow as pa

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"<html>not an image</html>")
    batch = _demo_rows(demo_input, {"good_en", "good_zh", "mismatched"}, n)
    paths = [*batch["image_path"], str(broken), str(tmp_path / "missing.jpg")]
    return pa.table(
        {
            "image_path": paths,
            "image_member": pa.nulls(len(paths), pa.string()),
            "caption": [*batch["caption"], "a cat", "a dog"],
            "reject_reason": pa.nulls(len(paths), pa.string()),
        }
    )


def test_the_pixel_stage_reproduces_open_clip_preprocessing_exactly(shared_data, tiny_clip):
    """Issue 20: the CPU pixel stage (no torch) + to_tensor in the actor give open_clip's own tensors."""
    import torch

    from curate.clip.models import load_clip, preprocess_config
    from curate.core.images import decode_rgb
    from curate.filters.clip_pixels import ClipPixels, supported, to_tensor

    model, preprocess, _ = load_clip(TINY_MODEL, str(tiny_clip), "cpu")
    cfg = preprocess_config(model)
    assert supported(cfg) and cfg == check_weights_in_child(TINY_MODEL, str(tiny_clip))
    stage = ClipPixels(cfg)
    files = sorted((shared_data / "coco" / "val2017").glob("*.jpg"))
    files += [p for p in sorted((shared_data / "images_edge").iterdir()) if p.suffix in (".jpg", ".png", ".webp")]
    compared = 0
    for path in files:
        data = path.read_bytes()
        try:
            expected = preprocess(decode_rgb(data, min_size=cfg["size"][0]))
        except Exception:  # noqa: BLE001 - undecodable: the stage must say so too
            assert stage.pixels(data) is None, path
            continue
        assert torch.equal(to_tensor([stage.pixels(data)], cfg)[0], expected), path
        compared += 1
    assert compared >= 25


def test_scores_through_the_pixel_stage_equal_the_in_process_path(demo_input, tiny_clip, tmp_path):
    from curate.filters.clip_pixels import PIXELS

    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    clip.preflight()
    table = _pixel_rows(demo_input, tmp_path)
    direct = clip(table.to_pandas())
    staged = clip(clip.pixel_stage().on_arrow(table).to_pandas())
    assert staged[PIXELS].iloc[-2:].isna().all()  # the broken and the missing image carry no pixels
    assert direct["reject_reason"].tolist() == staged["reject_reason"].tolist()
    assert direct["reject_reason"].iloc[-2:].tolist() == ["image:decode_error"] * 2
    scored = direct["clip_score"].notna()
    assert scored.sum() == len(table) - 2
    diff = (direct["clip_score"][scored].astype(float) - staged["clip_score"][scored].astype(float)).abs()
    assert diff.max() <= 1e-3


def _photo_rows(shared_data, tmp_path):
    """Real photos (COCO) and the edge images (PNG, WebP, GIF, CMYK, grey, EXIF-rotated, truncated, broken), a
    JPEG cut in half and a missing file, as alive ledger rows with captions."""
    import pyarrow as pa

    files = sorted((shared_data / "coco" / "val2017").glob("*.jpg"))[:24]
    files += sorted((shared_data / "images_edge").iterdir())
    half = tmp_path / "half.jpg"
    half.write_bytes(files[0].read_bytes()[: files[0].stat().st_size // 2])
    paths = [str(p) for p in files] + [str(half), str(tmp_path / "missing.jpg")]
    return pa.table(
        {
            "image_path": paths,
            "image_member": pa.nulls(len(paths), pa.string()),
            "caption": ["a photo of people and things" if i % 2 else "a cat on a bed" for i in range(len(paths))],
            "reject_reason": pa.nulls(len(paths), pa.string()),
        }
    )


def test_device_decode_gives_the_cpu_paths_reasons_and_close_scores(shared_data, tiny_clip, tmp_path):
    """Issue 20: `decode: device` (torchvision's decode_jpeg on the model's device; on this CPU-only machine
    libjpeg-turbo, the same code path as nvJPEG up to the decoder) gives every row the reason of the CPU path;
    non-JPEGs and the JPEGs the decoder or the markers refuse go through PIL as before. Scores: PIL's reduced-scale
    DCT decode is approximated by a block average, so the 64 px demo CLIP (the most pixel-sensitive model here)
    moves by a few thousandths on some photos; the median stays within 1e-3."""
    from curate.filters.clip_device import device_jpeg_header
    from curate.filters.clip_pixels import IMAGE_BYTES

    table = _photo_rows(shared_data, tmp_path)
    cpu = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    on_device = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu", decode="device")
    cpu.preflight()
    on_device.preflight()
    expected = cpu(cpu.pixel_stage().on_arrow(table).to_pandas())
    read = on_device.pixel_stage().on_arrow(table)
    assert IMAGE_BYTES in read.column_names and "clip_pixels" not in read.column_names
    datas = read.column(IMAGE_BYTES).to_pylist()
    assert sum(1 for d in datas if d and device_jpeg_header(d)) >= 24  # most rows take the device path
    for got in (on_device(read.to_pandas()), on_device(table.to_pandas())):  # staged bytes, or read in the actor
        assert got["reject_reason"].tolist() == expected["reject_reason"].tolist()
        assert (got["reject_reason"] == "image:decode_error").sum() >= 5  # broken, truncated, half, missing, ...
        scored = expected["clip_score"].notna()
        assert got["clip_score"].notna().tolist() == scored.tolist()
        diff = (got["clip_score"][scored].astype(float) - expected["clip_score"][scored].astype(float)).abs()
        assert diff.max() <= 0.01 and diff.median() <= 1e-3, diff.describe()
    with pytest.raises(ConfigError, match="decode 'gpu' is not valid; valid: cpu, device"):
        ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), decode="gpu")


@pytest.mark.integration
@pytest.mark.parametrize("decode", ["cpu", "device"])
def test_the_ray_plan_runs_the_pixel_stage_and_drops_its_column(demo_input, tiny_clip, tmp_path, ray_local, decode):
    from curate.filters.clip_pixels import IMAGE_BYTES, PIXELS
    from curate.filters.plan import build_dataset

    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu", decode=decode)
    clip.preflight()
    table = _pixel_rows(demo_input, tmp_path)
    direct = clip(table.to_pandas())
    out = build_dataset([table], [clip], local=False).to_arrow_refs()
    result = __import__("pyarrow").concat_tables(ray_local.get(out)).to_pandas()
    assert PIXELS not in result.columns and IMAGE_BYTES not in result.columns
    result = result.set_index("image_path").loc[list(table.column("image_path").to_pylist())]
    assert result["reject_reason"].tolist() == direct["reject_reason"].tolist()
    scored = direct["clip_score"].notna().to_numpy()
    diff = abs(result["clip_score"].to_numpy()[scored] - direct["clip_score"].to_numpy(dtype=float)[scored])
    assert diff.max() <= 1e-3


def test_device_decode_orients_and_picks_the_dct_scale_as_pil_does(shared_data):
    """The device path's EXIF turns equal PIL's exif_transpose, and its scale equals the one PIL's draft picks."""
    import io

    import numpy as np
    import torch
    from PIL import Image, ImageOps

    from curate.filters.clip_device import ORIENTATIONS, device_jpeg_header, draft_scale, oriented

    pixels = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    for orientation in ORIENTATIONS:
        image.getexif()[0x0112] = orientation
        turned = oriented(torch.from_numpy(pixels).permute(2, 0, 1), orientation).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(turned, np.asarray(ImageOps.exif_transpose(image)))
    for path in sorted((shared_data / "coco" / "val2017").glob("*.jpg"))[:10]:
        data = path.read_bytes()
        for size in (32, 64, 100, 224):
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            img.draft("RGB", (size, size))
            scale = draft_scale(width, height, size)
            assert img.size == (-(-width // scale), -(-height // scale)), (path, size)
        assert device_jpeg_header(data)[:2] == (width, height)
    assert device_jpeg_header(data[: len(data) // 2]) is None  # no end marker: PIL decides
    assert device_jpeg_header((shared_data / "images_edge" / "pil_sample_cmyk.jpg").read_bytes()) is None
    assert device_jpeg_header((shared_data / "images_edge" / "hopper.webp").read_bytes()) is None
