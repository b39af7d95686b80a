"""Shared fixtures: ../shared/data (skipped cleanly when absent), one local Ray session, the demo input and the
tiny demo CLIP built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from helpers import REPO

SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curate.demo.make import make_demo

    return make_demo(tmp_path_factory.mktemp("demo") / "demo_input", rows=600, seed=0)


@pytest.fixture(scope="session")
def demo_filter_run(demo_input, tiny_clip, ray_local, tmp_path_factory):
    """`make filter` on the demo input: (config, stats)."""
    from helpers import REPO, demo_overrides

    from curate import config, pipeline

    out = tmp_path_factory.mktemp("run") / "filter_demo"
    cfg = config.load(REPO / "pipelines" / "filter_demo.yaml", demo_overrides(demo_input, tiny_clip, out))
    return cfg, pipeline.run_filter(cfg)


@pytest.fixture(scope="session")
def tiny_clip(demo_input: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo CLIP exactly as `make filter` trains it."""
    from curate.clip.train import train_tiny_clip

    path = tmp_path_factory.mktemp("models") / "curate-tiny-clip.pt"
    report = train_tiny_clip(demo_input / "clip_train.parquet", path)
    assert report["auc"] > 0.95, report
    return path
