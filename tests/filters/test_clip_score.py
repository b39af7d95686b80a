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
    stage = ClipPixels(cfg, cfg["size"][0])
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


@pytest.mark.integration
def test_the_ray_plan_runs_the_pixel_stage_and_drops_its_column(demo_input, tiny_clip, tmp_path, ray_local):
    from curate.filters.clip_pixels import PIXELS
    from curate.filters.plan import build_dataset

    clip = ClipScore(model=TINY_MODEL, pretrained=str(tiny_clip), min_score=0.7, device="cpu")
    clip.preflight()
    table = _pixel_rows(demo_input, tmp_path)
    direct = clip(table.to_pandas())
    out = build_dataset([table], [clip], local=False).to_arrow_refs()
    result = __import__("pyarrow").concat_tables(ray_local.get(out)).to_pandas()
    assert PIXELS not in result.columns
    result = result.set_index("image_path").loc[list(table.column("image_path").to_pylist())]
    assert result["reject_reason"].tolist() == direct["reject_reason"].tolist()
    scored = direct["clip_score"].notna().to_numpy()
    diff = abs(result["clip_score"].to_numpy()[scored] - direct["clip_score"].to_numpy(dtype=float)[scored])
    assert diff.max() <= 1e-3
