"""Stage-1 filters. FILTERS is the only name -> class table for filters; YAML names them by these keys."""

from curate.core.schema import INGEST_REASONS
from curate.filters.base import Filter
from curate.filters.clip_score import ClipScore
from curate.filters.dedup import Decontaminate, DedupExact, DedupNear, DedupSemantic
from curate.filters.geometry import MaxAspectRatio, MinSide
from curate.filters.language import Language
from curate.filters.text import CaptionText

FILTERS: dict[str, type[Filter]] = {
    f.name: f
    for f in (
        MinSide,
        MaxAspectRatio,
        CaptionText,
        Language,
        ClipScore,
        DedupExact,
        DedupNear,
        DedupSemantic,
        Decontaminate,
    )
}
# Reasons with a part the config names (contaminated:<set>): documented as a pattern, not listed.
REASON_PATTERNS = {"contaminated:<set>": r"^contaminated:[a-z0-9][a-z0-9_.-]*$"}

__all__ = ["FILTERS", "REASON_PATTERNS", "Filter", "reject_reasons"]


def reject_reasons() -> tuple[str, ...]:
    """Every reject_reason a run can write: ingest reasons, then each filter's, in pipeline order."""
    filter_reasons = [
        r for f in FILTERS.values() for r in f.reasons if r not in INGEST_REASONS and r not in REASON_PATTERNS
    ]
    return (*INGEST_REASONS, *filter_reasons)
