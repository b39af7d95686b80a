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

__all__ = ["FILTERS", "REASON_PATTERNS", "Filter", "reason_stages", "reject_reasons"]


def reject_reasons() -> tuple[str, ...]:
    """Every reject_reason a run can write: ingest reasons, then each filter's, in pipeline order."""
    filter_reasons = [
        r for f in FILTERS.values() for r in f.reasons if r not in INGEST_REASONS and r not in REASON_PATTERNS
    ]
    return (*INGEST_REASONS, *filter_reasons)


def reason_stages(filters: list[Filter] | tuple[Filter, ...]) -> dict[str, str]:
    """reason (or, for a pattern, its part before ':') -> the filter that writes it, for the reasons a filter
    does not name after itself (duplicate:near is dedup_near's); ingest reasons stay with their stage."""
    stages = {}
    for f in filters:
        for reason in f.reasons:
            key = reason.split(":", 1)[0] if reason in REASON_PATTERNS else reason
            if reason not in INGEST_REASONS and key.split(":", 1)[0] != f.name:
                stages[key] = f.name
    return stages
