"""Dedup peer (issue 17): Data-Juicer's `image_deduplicator` (imagededup PHash, identical hash strings only,
first sample of each group kept) on the same samples as curate's image dedup, run as a script under the
Data-Juicer venv (`make bench-peer`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def run_dj_dedup(
    samples: list[dict], work: Path, peer_python: str, num_proc: int = 2, timeout: float = 1800.0
) -> dict:
    """Data-Juicer's phash dedup over `samples` ({"key", "path", "caption"}, in order: Data-Juicer keeps the
    first of each group). Returns its OUT.json ({"kept": [keys], "seconds", "samples", "method",
    "data_juicer"}), or {"error": ...} when the Data-Juicer venv is missing; raises when the run fails."""
    python = Path(peer_python)
    if not python.exists():
        return {"error": f"Data-Juicer not run: {python} not found (`make bench-peer` installs py-data-juicer there)"}
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    jsonl, result = work / "dj_dedup_samples.jsonl", work / "dj_dedup.json"
    with open(jsonl, "w", encoding="utf-8") as f:
        for s in samples:
            row = {"key": str(s["key"]), "image": str(Path(s["path"]).resolve()), "text": s.get("caption") or ""}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result.unlink(missing_ok=True)
    env = {
        **os.environ,
        "DATA_JUICER_CACHE_HOME": str((work / "cache" / "data_juicer").resolve()),
        "HF_HOME": str((work / "cache" / "hf").resolve()),
    }
    script = Path(__file__).with_name("peer_dj_dedup.py")  # run by path: it needs Data-Juicer, not curate
    command = [str(python), str(script), str(jsonl), str(result), str(num_proc)]
    log.info("dedup peer: Data-Juicer image_deduplicator (phash) on %d samples (num_proc=%d)", len(samples), num_proc)
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"Data-Juicer dedup timed out after {timeout:.0f}s: {_tail(e.stderr or e.stdout)}") from e
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"Data-Juicer dedup failed (exit {proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
    return json.loads(result.read_text(encoding="utf-8"))


def _tail(text: str | bytes | None, lines: int = 5) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " | ".join((text or "").strip().splitlines()[-lines:])[-800:]
