"""kill -9 in the middle of the dedup stages, then rerun (issue 17): the decisions and the ledger equal an
uninterrupted run's; no decision lost or doubled, no partial file visible."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest
from helpers import REPO, demo_overrides
from test_resume_after_kill import _run

pytestmark = pytest.mark.slow


def _args(demo_input, tiny_clip, out) -> list[str]:  # noqa: ANN001
    sets = [
        *demo_overrides(demo_input, tiny_clip, out),
        f"input.url_list.path={demo_input / 'urls_dedup.parquet'}",
        f"filters.decontaminate.sets=[{{name: demo_eval, folder: {demo_input / 'reference'}}}]",
    ]
    return ["filter", str(REPO / "pipelines" / "filter_dedup.yaml"), *[a for s in sets for a in ("--set", s)]]


def test_kill_9_during_dedup_then_resume_gives_the_same_decisions(demo_input, tiny_clip, tmp_path):
    reference = tmp_path / "reference"
    assert _run(_args(demo_input, tiny_clip, reference), reference) == 0
    out = tmp_path / "killed"
    args = _args(demo_input, tiny_clip, out)
    kills = [  # (the chunk-level kill points of a filter run are tests/test_resume_after_kill.py's)
        ("embeddings/part-*", 2, "before"),  # an embeddings part half written (its chunk is not done)
        ("dedup/decisions.parquet", 1, "before"),  # the decisions half written: decided again from the ledger
        ("ledger/part-*", 2, "before"),  # decided again, applying: one ledger part rewritten, the next half written
    ]
    for crash in kills:
        assert _run(args, out, crash=crash) == -9, f"the run finished before the kill point {crash}"
        assert not (out / "_SUCCESS").exists()
    assert _run(args, out) == 0
    decisions = [pq.read_table(o / "dedup" / "decisions.parquet") for o in (reference, out)]
    assert decisions[0].num_rows > 0 and decisions[0].equals(decisions[1])
    ledgers = [pq.read_table(o / "ledger").sort_by("row_id") for o in (reference, out)]
    columns = ["key", "reject_reason", "dup_of", "dup_distance", "phash", "image_sha256"]
    assert ledgers[0].select(columns).equals(ledgers[1].select(columns))
    keys = ledgers[1].column("key").to_pylist()
    assert len(keys) == len(set(keys)) == pq.read_table(out / "input.parquet").num_rows
    reasons = Counter(ledgers[1].column("reject_reason").to_pylist())
    assert all(reasons[r] >= 1 for r in ("duplicate:exact", "duplicate:near", "duplicate:semantic"))
    assert not list(out.rglob("*.tmp")), "a temp file is visible"
