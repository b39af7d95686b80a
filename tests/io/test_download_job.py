"""The filter driver never imports torch: img2dataset (albumentations -> torch) runs in a child process and the
CLIP weights are checked in another, yet the rows come back with their download results (issue 8's memory
bound: torch held in the driver was ~0.9 GiB of RSS for the whole run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import REPO, demo_overrides

# A fresh interpreter: pytest's own process has imported torch long ago.
SCRIPT = """
import json, sys
from pathlib import Path
from curate.commands.filter import run as pipeline
from curate.commands.filter.config import load as load_filter
from curate.ledger.inputs import read_input

cfg = load_filter(sys.argv[1], sys.argv[2:])
for f in pipeline._active_filters(cfg.filters)[0]:
    f.preflight()
rows = read_input(cfg.input).slice(0, 60)
raw = pipeline._raw_tables(cfg, rows, [0, 1, 2], 3, cfg.out_dir)
print(json.dumps({
    "imported": sorted(m for m in ("torch", "img2dataset", "open_clip", "albumentations") if m in sys.modules),
    "rows": [t.num_rows for t in raw],
    "status": [s for t in raw for s in t.column("download_status").to_pylist()],
    "reasons": sorted({r for t in raw for r in t.column("reject_reason").to_pylist() if r}),
    "raw": sorted(p.name for p in (cfg.out_dir / "raw").iterdir()),
}))
"""


def test_download_and_weights_check_leave_the_driver_without_torch(demo_input, tiny_clip, tmp_path):
    out = tmp_path / "run"
    sets = [*demo_overrides(demo_input, tiny_clip, out), "input.rows_per_chunk=20"]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO / "pipelines" / "filter_demo.yaml"), *sets],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    assert result["rows"] == [20, 20, 20]
    assert result["status"].count("success") >= 30  # the demo's first rows are mostly good images
    assert all(r.startswith(("download:", "image:")) for r in result["reasons"]), result["reasons"]
    # Harvested shards only; the attempt folder is gone.
    assert result["raw"] == sorted(
        [f"0000{c}{suffix}" for c in range(3) for suffix in (".parquet", ".tar", "_stats.json")] + ["_urls.parquet"]
    )


def test_the_download_processes_run_img2dataset_without_torch():
    # As img2dataset's spawned workers start: this module first, as __mp_main__, then img2dataset and our
    # downloader (unpickled).
    script = (
        "import runpy, sys; runpy.run_module('curate.download.job', run_name='__mp_main__', alter_sys=True); "
        "import img2dataset, curate.download.guarded_fetch; print(sys.modules['torch'] is None)"
    )
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True"]
