"""Image-geometry filters from Qwen-VL's cleaning rules (paper App. A.1, rules 1-2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from curate.core.errors import ConfigError
from curate.filters.base import Batch, Filter, numeric


@dataclass(kw_only=True)
class MinSide(Filter):
    """Keeps images whose shorter original side is at least `min_pixels`."""

    name: ClassVar[str] = "min_side"
    reasons: ClassVar[tuple[str, ...]] = ("min_side",)
    # Qwen's thresholds are unpublished (QwenLM/Qwen-VL#34); 224 is the common third-party default.
    min_pixels: int = 224

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_pixels < 1:
            raise ConfigError("min_side.min_pixels must be >= 1")

    def score(self, rows: Batch) -> pd.DataFrame:
        return pd.DataFrame(index=rows.index)

    def verdict(self, rows: Batch) -> pd.Series:
        side = np.minimum(numeric(rows["width"]), numeric(rows["height"]))
        return self.reject_where(~(side >= self.min_pixels), rows.index)


@dataclass(kw_only=True)
class MaxAspectRatio(Filter):
    """Keeps images with max(w/h, h/w) at most `max_ratio`."""

    name: ClassVar[str] = "max_aspect_ratio"
    reasons: ClassVar[tuple[str, ...]] = ("max_aspect_ratio",)
    max_ratio: float = 3.0  # common default; Qwen's value is unpublished (QwenLM/Qwen-VL#34)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_ratio < 1:
            raise ConfigError("max_aspect_ratio.max_ratio must be >= 1")

    def score(self, rows: Batch) -> pd.DataFrame:
        w, h = numeric(rows["width"]), numeric(rows["height"])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.maximum(w / h, h / w)
        ratio[~np.isfinite(ratio)] = np.inf  # a zero side is infinitely thin
        return pd.DataFrame({"aspect_ratio": ratio}, index=rows.index)

    def verdict(self, rows: Batch) -> pd.Series:
        return self.reject_where(~(numeric(rows["aspect_ratio"]) <= self.max_ratio), rows.index)
