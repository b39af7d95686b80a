"""Test helpers: pipeline-shaped batches and demo-run overrides."""

from pathlib import Path

import pandas as pd

from curate.core.schema import LEDGER_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def make_batch(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    data = {c: [None] * n for c in LEDGER_COLUMNS}
    data["key"] = [f"{i:09d}" for i in range(n)]
    data.update(columns)
    return pd.DataFrame(data)


def demo_overrides(demo_input: Path, tiny_clip: Path, out: Path) -> list[str]:
    """--set overrides that point pipelines/filter_demo.yaml at test-owned inputs and outputs."""
    return [
        f"input.url_list.path={demo_input / 'urls.parquet'}",
        f"input.url_list.serve_dir={demo_input / 'files'}",
        f"filters.clip_score.pretrained={tiny_clip}",
        f"output.dir={out}",
    ]
