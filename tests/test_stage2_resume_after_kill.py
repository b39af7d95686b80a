"""kill -9 of `curate build` (shapes and text; synthetic OCR documents) and `curate mix` at several points, then a
rerun into the same folder (issue 15): every output file is byte-identical to an uninterrupted run's, no sample
twice, no temp or scratch file left."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from helpers import REPO

pytestmark = pytest.mark.slow
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
CONFIGS = {"build": "build_demo.yaml", "ocr": "build_synthdog.yaml", "mix": "mix_demo.yaml"}
COMMANDS = {"build": "build", "ocr": "build", "mix": "mix"}  # "ocr": a build of one synthdog source


def _sets(demo_input: Path, root: Path) -> dict[str, list[str]]:
    corpora = [str(demo_input / "corpus_en.txt"), str(demo_input / "corpus_zh.txt")]
    # no filter run here: shapes stand in for the curated pairs (images made and encoded in the workers)
    build = {
        "name": "tasks",
        "sources": [
            {"shapes": {"count": 1200, "size": 96, "seed": 1}},
            {"text": {"label": "demo_text", "paths": corpora}},
        ],
    }
    (root / "build.yaml").write_text(yaml.safe_dump(build))
    return {
        "build": [f"config={root / 'build.yaml'}", "records_per_chunk=100", "output.samples_per_shard=150"],
        "ocr": ["sources.synthdog.count=60", "sources.synthdog.documents_per_chunk=6",
                f"sources.synthdog.corpus_en=[{corpora[0]}]", f"sources.synthdog.corpus_zh=[{corpora[1]}]",
                "output.samples_per_shard=10"],
        "mix": [f"inputs=[{root / 'build'}, {root / 'ocr'}]", "budget=3000", "window=400",
                "with_replacement=[ref_grounding, grounded_caption, ocr]", "output.samples_per_shard=5",
                "weights={caption: 0, vqa: 0, grounding: 0, ref_grounding: 1, grounded_caption: 1, ocr: 1,"
                " text: 0.1}"],
    }  # fmt: skip


def _run(command: str, sets: list[str], out: Path, kill_when=None, crash=None) -> int:
    """curate COMMAND into `out` (optionally under crash_at.py); SIGKILL it once kill_when(out) holds."""
    config = (
        sets[0].removeprefix("config=") if sets[0].startswith("config=") else REPO / "pipelines" / CONFIGS[command]
    )
    sets = [s for s in sets if not s.startswith("config=")]
    args = [COMMANDS[command], str(config), *[a for s in sets for a in ("--set", s)]]
    args += ["--out", str(out)]
    prefix = [sys.executable, str(REPO / "tests" / "crash_at.py"), str(out), *map(str, crash), "--"] if crash else []
    full = prefix + ([] if crash else [sys.executable, "-m", "curate"]) + args
    log = out.parent / f"{out.name}.log"
    with open(log, "ab") as stderr:
        proc = subprocess.Popen(full, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        if kill_when is not None:
            while proc.poll() is None and not kill_when(out):
                time.sleep(0.01)
            if proc.poll() is None:
                proc.kill()
        proc.wait(timeout=600)
    if proc.returncode not in (0, -9):
        raise AssertionError(log.read_text()[-3000:])
    return proc.returncode


def _count(pattern: str):  # noqa: ANN202
    return lambda out: len(list(out.glob(pattern)))


def _digests(out: Path) -> dict[str, str]:
    files = [
        p for p in sorted(out.rglob("*")) if p.is_file() and p.name not in ("run.json", "stats.json", "config.yaml")
    ]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if ".log" not in p.name}


KILLS = {
    "build": [
        {"kill_when": lambda o: _count("_chunks/build/*.json")(o) >= 3},  # Ray workers mid-chunk
        {"crash": ("_chunks/build/*", 6, "before")},  # a marker half written
        {"kill_when": lambda o: _count("*/shards/*.tar")(o) >= 4},  # while the shards are cut
        {"crash": ("stats.json", 1, "after")},  # finished but for _SUCCESS
    ],
    "ocr": [
        {"kill_when": lambda o: _count("_chunks/build/*.json")(o) >= 2},
        {"crash": ("_chunks/build/*", 5, "before")},
        {"kill_when": lambda o: _count("ocr/shards/*.tar")(o) >= 2},
    ],
    "mix": [
        {"kill_when": lambda o: _count("index/*.parquet")(o) >= 2},  # while the index is built
        {"crash": ("_chunks/write/*", 3, "before")},  # shards written, a marker half written
        {"kill_when": lambda o: _count("shards/*.tar")(o) >= 8},  # Ray writers mid-way
        {"crash": ("sft.json", 1, "before")},
        {"crash": ("stats.json", 1, "after")},
    ],
}


def test_kill_9_of_build_ocr_and_mix_then_resume_equals_an_uninterrupted_run(demo_input, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for root in (reference, killed):
        root.mkdir()
    for command in ("build", "ocr", "mix"):
        assert _run(command, _sets(demo_input, reference)[command], reference / command) == 0
        out, sets = killed / command, _sets(demo_input, killed)[command]
        for point in KILLS[command]:
            assert _run(command, sets, out, **point) == -9, f"{command} finished before the kill point {point}"
            assert not (out / "_SUCCESS").exists()
        assert _run(command, sets, out) == 0
        assert _digests(out) == _digests(reference / command), command
        assert not list(out.rglob("*.tmp")), f"{command}: a temp file is visible"
        assert not [p for p in out.iterdir() if p.name in ("_chunks", "_spool", "_plan")], f"{command}: scratch left"
    keys = [k for row in pq.read_table(killed / "build" / "text" / "parquet").to_pylist() for k in [row["key"]]]
    assert keys and not [k for k, n in Counter(keys).items() if n > 1]
    mixed = pq.read_table(killed / "mix" / "parquet", columns=["task", "sample_keys"]).to_pylist()
    text_keys = [k for row in mixed if row["task"] == "text" for k in row["sample_keys"]]
    assert text_keys and len(text_keys) == len(set(text_keys))  # drawn without replacement: never twice
