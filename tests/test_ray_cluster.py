"""The filter pipeline on a 2-node Ray cluster (issue 8): the same config, only `ray.address` set, gives the
same ledger and shards as the single-node run; `curate build` (synthetic OCR included) and `curate mix` on the
cluster give the same shards, parquet parts and sft.json as on a single node (issue 15)."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import REPO, demo_overrides

pytestmark = pytest.mark.slow
# RAY_AUTH_* come from each test's own choice, never from whatever an earlier in-process ray.init() left behind
# (since Ray 2.59 a new local instance sets RAY_AUTH_MODE=token in its own process's environment).
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")},
    "HF_HUB_OFFLINE": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}
COMPARED = ["key", "reject_reason", "caption", "width", "height", "aspect_ratio", "lang", "lang_score", "image_sha256",
            "phash", "dup_of", "dup_distance"]  # fmt: skip

# A head node that only coordinates (no CPUs: it schedules nothing) and one worker node with 2 CPUs, each its own
# raylet and object store: every filter task and actor runs on the worker node, and every block travels between
# nodes to reach the driver. It runs in its own process, so its auth settings are exactly the ones given to it.
CLUSTER = """
import sys
from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()  # until the test closes it
cluster.shutdown()
"""


def _curate(*args: str, env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "curate", *args], cwd=REPO, env=env or ENV, capture_output=True, text=True
    )
    assert proc.returncode == expect, proc.stderr[-3000:]
    return proc


def _filter(demo_input: Path, tiny_clip: Path, out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    """The demo with the dedup stages (filter_dedup: filter_demo's filters, then decontaminate, exact, near and
    semantic dedup over the whole run, issue 17)."""
    sets = [
        *demo_overrides(demo_input, tiny_clip, out),
        f"input.url_list.path={demo_input / 'urls_dedup.parquet'}",
        f"filters.decontaminate.sets=[{{name: demo_eval, folder: {demo_input / 'reference'}}}]",
        *extra,
    ]
    return _curate(
        "filter", str(REPO / "pipelines" / "filter_dedup.yaml"), *[a for s in sets for a in ("--set", s)], **kwargs
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.tar"))
    }


@contextmanager
def two_node_cluster(env: dict[str, str], log: Path) -> Iterator[str]:
    """Starts the 2-node cluster with `env`; yields its address."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLUSTER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            address = proc.stdout.readline().strip()
            assert address, f"the cluster did not start:\n{log.read_text()[-3000:]}"
            yield address
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_filter_on_a_two_node_cluster_equals_the_single_node_run(demo_input, tiny_clip, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    _filter(demo_input, tiny_clip, single)  # first: a plain ray.init() would join a cluster running here
    # Token auth on, as Ray (>= 2.59) now defaults for new clusters: the client needs RAY_AUTH_MODE and the token.
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    with two_node_cluster({**ENV, **token}, tmp_path / "cluster.log") as address:
        refused = _filter(demo_input, tiny_clip, tmp_path / "refused", f"ray.address={address}", expect=2)
        assert f"the Ray cluster at {address} refused" in refused.stderr and "RAY_AUTH_MODE=token" in refused.stderr
        assert refused.stderr.rstrip().splitlines()[-1].startswith("curate: error: the Ray cluster at"), refused.stderr
        _filter(demo_input, tiny_clip, multi, f"ray.address={address}", env={**ENV, **token})
        multi_stage2 = _stage2(
            demo_input, multi, tmp_path / "s2_multi", f"ray.address={address}", env={**ENV, **token}
        )
    a, b = (pq.read_table(o / "ledger").sort_by("row_id") for o in (single, multi))
    assert a.num_rows == b.num_rows == pq.read_table(single / "input.parquet").num_rows
    assert a.select(COMPARED).to_pylist() == b.select(COMPARED).to_pylist()
    for x, y in zip(a.column("clip_score").to_pylist(), b.column("clip_score").to_pylist(), strict=True):
        assert (x is None and y is None) or abs(x - y) < 1e-5
    assert _digests(single / "shards") == _digests(multi / "shards")  # byte-identical WebDataset shards
    decisions = [pq.read_table(o / "dedup" / "decisions.parquet") for o in (single, multi)]
    assert decisions[0].equals(decisions[1]) and decisions[0].num_rows > 0  # the same global dedup decisions

    # stage 2 on the cluster (issue 15): build and mix outputs byte-identical to single-node runs
    assert _stage2(demo_input, single, tmp_path / "s2_single") == multi_stage2


def _stage2(demo_input: Path, filter_run: Path, root: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    """`curate build` (build_demo on the filter run, with 24 synthetic OCR documents) and `curate mix` on it;
    sha256 of every shard, parquet part, index part, sft.json and SFT image they wrote."""
    en, zh = demo_input / "corpus_en.txt", demo_input / "corpus_zh.txt"
    sets = {
        "build": [f"sources.curated.run={filter_run}", f"sources.text.paths=[{en}, {zh}]",
                  "sources.synthdog.count=24", "sources.synthdog.documents_per_chunk=5", "sources.shapes.count=40",
                  f"sources.synthdog.corpus_en=[{en}]", f"sources.synthdog.corpus_zh=[{zh}]",
                  "records_per_chunk=40", "output.samples_per_shard=60"],
        "mix": [f"inputs=[{root / 'build'}]", "budget=500", "window=200", "output.samples_per_shard=20"],
    }  # fmt: skip
    configs = {"build": "build_demo.yaml", "mix": "mix_demo.yaml"}
    for command in ("build", "mix"):
        args = [a for s in [*sets[command], *extra] for a in ("--set", s)]
        _curate(command, str(REPO / "pipelines" / configs[command]), *args, "--out", str(root / command), env=env)
    files = [p for p in sorted(root.rglob("*")) if p.suffix in (".tar", ".parquet", ".jpg") or p.name == "sft.json"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
