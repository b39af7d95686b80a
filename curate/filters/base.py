"""The one filter abstraction: score alive rows, then give each a reason or None (kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from curate.core.errors import ConfigError, FilterBugError

Batch = pd.DataFrame  # Ray Data batch_format="pandas"; one row per input row
HASH_COLUMNS = ("phash", "dhash")
SIDE_COLUMNS = ("clip_embedding", "phash_windows")  # per-row vectors kept beside the ledger (curate.ledger.embeddings)


def conform(batch: Batch) -> Batch:
    """Give ledger columns one canonical pandas dtype each (nullable ints, float64, str-or-None objects), so Ray
    turns the batch back into typed Arrow columns instead of pickled Python objects."""
    from curate.core.schema import LEDGER_SCHEMA

    batch = batch.copy()
    for column in SIDE_COLUMNS:  # bytes or None: a NaN left by pandas would make Ray pickle the whole column
        if column in batch.columns:
            batch[column] = [v if isinstance(v, bytes) else None for v in batch[column]]
    for field in LEDGER_SCHEMA:
        if field.name not in batch.columns:
            continue
        column = batch[field.name]
        if field.name in HASH_COLUMNS:  # 64-bit hashes: through float64 (to_numeric with nulls) they lose bits
            batch[field.name] = pd.array([None if pd.isna(v) else int(v) for v in column], dtype="Int64")
        elif pa.types.is_integer(field.type):
            batch[field.name] = pd.to_numeric(column, errors="coerce").astype("Int64")
        elif pa.types.is_floating(field.type):
            batch[field.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            batch[field.name] = column.astype(object).where(column.notna(), None)
    return batch


def numeric(column: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing values, whatever dtype Ray's block conversion gave it."""
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def captions(rows: Batch) -> pd.Series:
    """The caption a filter reads: cleaned by `caption_text` when that filter ran before, else as given."""
    return rows["caption"] if "caption" in rows.columns else rows["caption_raw"]


DEVICES = ("auto", "cpu", "cuda")


@dataclass(kw_only=True)
class Filter:
    """Adds score columns to alive rows and sets `reject_reason` on those that fail; never drops rows."""

    name: ClassVar[str]  # YAML key, and the reject_reason (or its prefix before ':')
    reasons: ClassVar[tuple[str, ...]]  # every reason this filter can write
    # True: runs in its own Ray actor pool, so setup() happens once per actor (CLIP). False: runs in a Ray task,
    # chained with its model-free neighbours (FilterChain); a small model is cached per worker process instead.
    uses_model: ClassVar[bool] = False
    # How the filter runs (every filter has them, so no call site special-cases one):
    skip: bool = False  # run without this filter; the report lists it as skipped
    device: str = "auto"  # a model filter's device: auto (cuda when the worker has a GPU), cpu, cuda
    concurrency: int = 1  # a model filter's Ray actors, each holding one copy of the model
    batch_size: int = 64  # rows per model call; model-free filters share `ray.batch_rows`-row tasks

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"{self.name}.device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.batch_size < 1 or self.concurrency < 1:
            raise ConfigError(f"{self.name}.batch_size and {self.name}.concurrency must be >= 1")

    def num_gpus(self, cluster_gpus: float) -> int:
        """GPUs each of this filter's actors asks Ray for."""
        return 1 if self.device == "cuda" or (self.uses_model and self.device == "auto" and cluster_gpus > 0) else 0

    def __getstate__(self) -> dict:
        """Config fields only: what setup() loads (models, thread pools; `_` names) stays in its process."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def preflight(self) -> None:
        """Driver-side checks before Ray starts (weights present, ...); raise ConfigError when unusable."""

    def artifacts(self) -> list[str]:
        """Local files (model weights) whose content decides this filter's results; part of the run identity."""
        return []

    def setup(self) -> None:
        """Load models; runs once per worker."""

    def score(self, rows: Batch) -> pd.DataFrame:
        """New columns for `rows` (same index); no thresholds applied here."""
        raise NotImplementedError

    def verdict(self, rows: Batch) -> pd.Series:
        """Reject reason per row (None = passes), from ledger columns only: thresholds can be re-applied to a
        saved ledger without recomputing scores."""
        raise NotImplementedError

    def _judge(self, rows: Batch) -> tuple[pd.DataFrame, pd.Series]:
        scores = self.score(rows)
        return scores, self.verdict(rows.assign(**{c: scores[c] for c in scores.columns}))

    def _culprit(self, rows: Batch) -> str:
        """The key of the first row that raises on its own (the error path only: one row at a time)."""
        for i in range(len(rows)):
            try:
                self._judge(rows.iloc[[i]])
            except Exception:  # noqa: BLE001 - looking for the row that raises, whatever it raises
                return str(rows["key"].iloc[i])
        return "(none alone: only the whole batch fails)"

    def reject_where(self, failed: np.ndarray | pd.Series, index: pd.Index) -> pd.Series:
        """Reason series: this filter's name where `failed`, None elsewhere."""
        return pd.Series(np.where(np.asarray(failed, dtype=bool), self.name, None), index=index, dtype=object)

    def __call__(self, batch: Batch) -> Batch:
        return conform(self.apply(batch))

    def apply(self, batch: Batch) -> Batch:
        """`batch` with this filter's scores and reasons merged in (dtypes not yet conformed: see __call__)."""
        alive = batch["reject_reason"].isna().to_numpy()
        if not alive.any():
            return batch
        rows = batch.loc[alive]
        try:
            scores, reasons = self._judge(rows)
        except Exception as err:  # a bug, not bad data: fail the run, naming the filter and the sample
            raise FilterBugError(
                f"filter {self.name} raised {type(err).__name__}: {err} on sample key {self._culprit(rows)} "
                f"(a batch of {len(rows)} rows). Bad data gets a reason, never an exception: this is a bug in "
                f"the filter. Fix it and rerun: the finished chunks are kept."
            ) from err
        batch = batch.copy()
        for column in [*scores.columns, "reject_reason"]:
            values = reasons if column == "reject_reason" else scores[column]
            merged = (
                batch[column].astype(object)
                if column in batch.columns
                else pd.Series(None, index=batch.index, dtype=object)
            )
            merged[alive] = values.to_numpy(dtype=object)
            batch[column] = merged
        return batch


class FilterChain:
    """Consecutive model-free filters applied in one Ray task: one pandas round trip for all of them, not one
    per filter (measured in `curate bench` P2: one Ray stage per filter cost most of the metadata stage's time)."""

    def __init__(self, filters: list[Filter]) -> None:
        self.filters = filters

    def __call__(self, batch: Batch) -> Batch:
        for f in self.filters:
            batch = f.apply(batch)
        return conform(batch)

    def on_arrow(self, table: pa.Table) -> pa.Table:
        """The chain on an Arrow batch (the Ray stage's format): one conversion to pandas and back here, because
        Ray sizing a pandas block with Python string columns cost more than the conversion (bench P2)."""
        return pa.Table.from_pandas(self(table.to_pandas()), preserve_index=False)
