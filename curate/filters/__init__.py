"""Stage-1 filters. FILTERS is the only name -> class table for filters; YAML names them by these keys."""

from curate.filters.base import Filter
from curate.filters.clip_score import ClipScore
from curate.filters.geometry import MaxAspectRatio, MinSide
from curate.filters.language import Language
from curate.filters.text import CaptionText

FILTERS: dict[str, type[Filter]] = {f.name: f for f in (MinSide, MaxAspectRatio, CaptionText, Language, ClipScore)}

__all__ = ["FILTERS", "Filter"]
