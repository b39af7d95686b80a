"""Shared fixtures: ../shared/data (skipped cleanly when absent), one local Ray session, the demo input and the
tiny demo CLIP built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from helpers import REPO

SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
# Fixtures that build an end-to-end chain (train the demo CLIP, run a filter, build, mix, start Ray or a browser):
# a test that uses one belongs to the integration tier (`make test-integration`), where each is built once.
INTEGRATION_FIXTURES = {
    "tiny_clip", "ray_local", "demo_filter_run", "demo_mixture", "shapes_build", "shapes_mix", "built", "task_dirs",
    "mixed", "mixture", "browser", "demo_run",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers (issue 16): `make test` is the fast tier; a test is in the integration tier when it uses a chain
    fixture, unless it is the one `smoke` test (a whole filter run, CLIP included) the fast tier keeps; slow
    tests stay slow."""
    for item in items:
        if "slow" in item.keywords or "smoke" in item.keywords:
            continue
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


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

    from curate.commands.filter import run as pipeline
    from curate.commands.filter.config import load as load_filter

    out = tmp_path_factory.mktemp("run") / "filter_demo"
    cfg = load_filter(REPO / "pipelines" / "filter_demo.yaml", demo_overrides(demo_input, tiny_clip, out))
    return cfg, pipeline.run_filter(cfg)


@pytest.fixture(scope="session")
def tiny_clip(demo_input: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo CLIP exactly as `make filter` trains it."""
    from curate.clip.train import train_tiny_clip

    path = tmp_path_factory.mktemp("models") / "curate-tiny-clip.pt"
    report = train_tiny_clip(demo_input / "clip_train.parquet", path)
    assert report["auc"] > 0.95, report
    return path


@pytest.fixture(scope="session")
def demo_mixture(demo_filter_run, demo_input, tmp_path_factory):
    """`make mixture` on the test's demo filter run, with 24 synthetic documents and 40 shape scenes: build_demo
    (t), mix_demo (m)."""
    from helpers import REPO

    from curate.commands.build.config import load_build
    from curate.commands.build.run import run_build
    from curate.commands.mix.config import load_mix
    from curate.commands.mix.run import run_mix

    root = tmp_path_factory.mktemp("chain")
    filter_cfg, _ = demo_filter_run
    en, zh = demo_input / "corpus_en.txt", demo_input / "corpus_zh.txt"
    build = [f"sources.curated.run={filter_cfg.out_dir}", f"sources.text.paths=[{en}, {zh}]"]
    build += [f"output.dir={root / 't'}"]
    build += ["sources.synthdog.count=24", f"sources.synthdog.corpus_en=[{en}]", f"sources.synthdog.corpus_zh=[{zh}]"]
    build += ["sources.shapes.count=40"]
    run_build(load_build(REPO / "pipelines" / "build_demo.yaml", build))
    mix = [f"inputs=[{root / 't'}]", "budget=600", "output.samples_per_shard=20", f"output.dir={root / 'm'}"]
    run_mix(load_mix(REPO / "pipelines" / "mix_demo.yaml", mix))
    return root


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# The flags this machine's closed network needs (no background connections, no GPU, no sandbox as root).
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,2400",
)  # fmt: skip


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) or not shutil.which(CHROMEDRIVER):
        pytest.fail("headless Chromium is needed: run `make browser` (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
