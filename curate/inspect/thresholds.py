"""Re-apply other thresholds to a finished filter run from its saved scores: no image is decoded and no model
(CLIP, fastText) is loaded, because every filter's verdict reads ledger columns only.

A row rejected upstream in the original run was never scored by the later filters. If the new thresholds let it
pass that upstream filter, its fate at the later ones is unknown without a rerun: it is reported as
`unscored:<filter>`, never guessed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from curate.core.config import build_named, read_yaml
from curate.filters import FILTERS
from curate.filters.base import Filter
from curate.ledger.parts import read_ledger
from curate.ledger.stats import stage_of


@dataclass
class Reapplied:
    rows: pd.DataFrame  # key, reject_reason (as run), new_reason (None = kept); one row per input row
    old_yaml: str
    new_yaml: str

    @property
    def old_keep_rate(self) -> float:
        return float(self.rows["reject_reason"].isna().mean())

    @property
    def new_keep_rate(self) -> float:
        return float(self.rows["new_reason"].isna().mean())

    def counts(self) -> pd.DataFrame:
        """Rows per outcome, as run and with the new thresholds."""
        old = self.rows["reject_reason"].fillna("kept").value_counts().rename("as run")
        new = self.rows["new_reason"].fillna("kept").value_counts().rename("new thresholds")
        return pd.concat([old, new], axis=1).fillna(0).astype(int).sort_index()

    def yaml_diff(self) -> str:
        """The config change as a unified diff of the resolved YAML."""
        lines = difflib.unified_diff(
            self.old_yaml.splitlines(), self.new_yaml.splitlines(), "config.yaml", "new.yaml", lineterm=""
        )
        return "\n".join(lines)

    def write_yaml(self, path: Path) -> Path:
        path.write_text(self.new_yaml)
        return path


def reapply(run: Path, overrides: list[str]) -> Reapplied:
    """Verdicts of the run's filters with `overrides` (`filters.clip_score.min_score=0.8`, ...) applied."""
    old_filters, old_yaml = _filters(run / "config.yaml", [])
    new_filters, new_yaml = _filters(run / "config.yaml", overrides)
    ledger = read_ledger(run).to_pandas()
    names = [f.name for f in new_filters]
    reached = _stage_reached(ledger["reject_reason"], names)  # index of the filter that rejected (or len)
    new = pd.Series([None] * len(ledger), index=ledger.index, dtype=object)
    ingest = ledger["reject_reason"].map(lambda r: isinstance(r, str) and stage_of(r) not in names)
    new[ingest] = ledger.loc[ingest, "reject_reason"]  # download / decode failures do not depend on thresholds
    was_skipped = {f.name for f in old_filters if f.skip}
    for i, f in enumerate(new_filters):
        if f.skip:  # `skip: true`: the filter passes every row (and has no scores to read)
            continue
        alive = new.isna()
        unscored = alive & ((reached < i) | (f.name in was_skipped))  # never scored by this filter as run
        new[unscored] = f"unscored:{f.name}"
        scored = alive & ~unscored
        if scored.any():
            new[scored] = f.verdict(ledger.loc[scored]).to_numpy(dtype=object)
    rows = ledger[["key", "reject_reason"]].assign(new_reason=new)
    return Reapplied(rows, old_yaml, new_yaml)


def _filters(config: Path, overrides: list[str]) -> tuple[list[Filter], str]:
    """The filters of a run's saved config with `overrides` applied, and that config as YAML."""
    raw = read_yaml(config, overrides)
    filters = [build_named(entry, FILTERS, "filters", config.name) for entry in raw.get("filters") or []]
    return filters, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def _stage_reached(reasons: pd.Series, names: list[str]) -> pd.Series:
    """Per row, the position of the filter that rejected it in the original run (len(names) for kept rows, -1 for
    rows rejected before any filter): the row was scored by every filter up to that one."""
    position = {n: i for i, n in enumerate(names)}

    def where(reason: object) -> int:
        if not isinstance(reason, str):
            return len(names)
        return position.get(stage_of(reason), -1)

    return reasons.map(where).astype(int)
