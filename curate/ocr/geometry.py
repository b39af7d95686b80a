"""Projective geometry shared by the renderer and its quad tracking: one homography moves pixels and quads."""

from __future__ import annotations

import numpy as np


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with H @ [x, y, 1] ~ [x', y', 1] for four point pairs (rows of src -> rows of dst)."""
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, dtype=float))
    h = vt[-1].reshape(3, 3)
    return h / h[2, 2]


def apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through H."""
    pts = np.hstack([np.asarray(points, dtype=float), np.ones((len(points), 1))]) @ h.T
    return pts[:, :2] / pts[:, 2:3]


def inside(quad: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which points lie inside a convex quad (corners in order, either orientation)."""
    quad = np.asarray(quad, dtype=float)
    signs = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        signs.append((b[0] - a[0]) * (points[:, 1] - a[1]) - (b[1] - a[1]) * (points[:, 0] - a[0]))
    signs = np.stack(signs)
    return np.all(signs >= 0, axis=0) | np.all(signs <= 0, axis=0)
