"""`make mixture` covers all seven tasks on the embedded demo, offline (issue 21): synthetic shape scenes give the
grounding formats and VQA beside the curated captions, the text corpus and the synthetic OCR documents; the
build and the mixture pass `curate validate`."""

from __future__ import annotations

import json

from curate.format.qwen import TASK_NAMES
from curate.format.validate import validate_paths
from curate.mixture.validate import validate_mix


def test_the_demo_mixture_holds_all_seven_tasks_and_validates(demo_mixture):
    stats = json.loads((demo_mixture / "m" / "stats.json").read_text())
    assert stats["missing_tasks"] == {}
    assert sorted(stats["tasks"]) == sorted(TASK_NAMES)
    assert all(r["samples"] > 0 for r in stats["tasks"].values()), stats["tasks"]
    checked, problems = validate_mix(demo_mixture / "m")
    assert checked > 0 and not problems, list(problems.items())[:5]
    checked, problems = validate_paths([demo_mixture / "t"])
    assert checked > 0 and not problems, list(problems.items())[:5]
