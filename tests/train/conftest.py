"""Small training inputs built in the test session: a shapes task build and a packed mixture of it."""

from __future__ import annotations

import pytest

from curate.commands.build.config import build_from_dict
from curate.commands.build.run import run_build
from curate.commands.mix.config import MixConfig
from curate.commands.mix.run import run_mix
from curate.core.config import build_dataclass


@pytest.fixture(scope="session")
def shapes_build(tmp_path_factory):
    """60 shape images -> ref_grounding task shards of 10 samples."""
    out = tmp_path_factory.mktemp("shapes") / "build"
    raw = {
        "name": "shapes",
        "sources": [{"shapes": {"count": 60, "size": 32, "max_objects": 2, "tasks": ["ref_grounding"]}}],
        "output": {"dir": str(out), "samples_per_shard": 10},
    }
    run_build(build_from_dict(raw))
    return out


@pytest.fixture(scope="session")
def shapes_mix(shapes_build, tmp_path_factory):
    """The shapes samples packed into 2048-token sequences (a `curate mix` output), 4 sequences per shard."""
    out = tmp_path_factory.mktemp("shapes") / "mix"
    raw = {
        "name": "shapes_mix",
        "inputs": [str(shapes_build)],
        "budget": 400,
        "weights": {"caption": 0, "vqa": 0, "grounding": 0, "grounded_caption": 0, "ocr": 0, "text": 0},
        "sft": {"conversations": 0},
        "output": {"dir": str(out), "samples_per_shard": 4},
    }
    run_mix(build_dataclass(MixConfig, raw, "test"))
    return out
