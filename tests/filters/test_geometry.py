import numpy as np
from helpers import make_batch

from curate.filters.geometry import MaxAspectRatio, MinSide


def test_min_side_rejects_small_and_keeps_large():
    batch = make_batch(width=[640, 100, 300], height=[480, 800, 299])
    out = MinSide(min_pixels=300)(batch)
    assert out["reject_reason"].tolist() == [None, "min_side", "min_side"]


def test_max_aspect_ratio_rejects_3_to_1_panorama_and_tall_strip():
    batch = make_batch(width=[900, 300, 100, 300], height=[300, 300, 400, 299])
    out = MaxAspectRatio(max_ratio=3.0)(batch)
    assert out["reject_reason"].tolist() == [None, None, "max_aspect_ratio", None]
    assert np.allclose(out["aspect_ratio"].astype(float), [3.0, 1.0, 4.0, 300 / 299])


def test_zero_side_is_rejected_not_a_crash():
    out = MaxAspectRatio(max_ratio=3.0)(make_batch(width=[0], height=[10]))
    assert out["reject_reason"].tolist() == ["max_aspect_ratio"]


def test_rows_already_rejected_are_left_alone():
    batch = make_batch(width=[10, 10], height=[10, 10], reject_reason=["download:not_found", None])
    out = MinSide(min_pixels=100)(batch)
    assert out["reject_reason"].tolist() == ["download:not_found", "min_side"]
