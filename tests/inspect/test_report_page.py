"""`curate report` (issue 7, AC 3): each report page opens in headless Chromium without console errors and every
figure loads; a screenshot of each is kept under out/test_previews/."""

from __future__ import annotations

import pytest
from helpers import REPO

from curate.__main__ import main

SHOTS = REPO / "out" / "test_previews"


@pytest.mark.parametrize("kind", ["filter", "build", "mix"])
def test_report_page_opens_without_console_errors_and_shows_every_figure(kind, browser, demo_filter_run, demo_mixture,
                                                                         tmp_path):  # fmt: skip
    path = {"filter": demo_filter_run[0].out_dir, "build": demo_mixture / "t",
            "mix": demo_mixture / "m"}[kind]  # fmt: skip
    out = tmp_path / f"{kind}.html"
    assert main(["report", str(path), "--out", str(out)]) == 0
    figures = sorted(tmp_path.glob(f"{kind}_*.png"))
    assert figures
    browser.get(out.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])"
    )
    assert sorted(alt for alt, _ in images) == sorted(p.stem.removeprefix(f"{kind}_") for p in figures)
    assert all(loaded for _, loaded in images), images
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / f"report_{kind}.png"))
