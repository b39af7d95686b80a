"""The chain filter -> build -> mix -> train reading and writing only s3:// on a real S3-compatible server (moto's
standalone server, started here on 127.0.0.1), against the same chain run on local folders (issue 21).

Every command runs as the README shows it (`curate filter ... --out s3://bucket/run`), in its own process with the
endpoint in AWS_ENDPOINT_URL. The mix is killed (SIGKILL) after its second shard chunk and resumed with an empty
staging folder, as on another machine: only object storage carries the run over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

pytestmark = pytest.mark.integration
BUCKET = "curate-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(environment for curate, s3fs filesystem) of a moto server on loopback holding an empty bucket."""
    import s3fs

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {**os.environ, **creds, "AWS_ENDPOINT_URL": endpoint, "HF_HUB_OFFLINE": "1"}
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=endpoint)
    fs.mkdir(BUCKET)
    yield env, fs
    server.terminate()
    server.wait(timeout=30)


def _curate(env: dict, staging: Path, *args: str, crash: tuple | None = None) -> int:
    prefix = [str(REPO / "tests" / "crash_at.py"), *map(str, crash), "--"] if crash else ["-m", "curate"]
    proc = subprocess.run(
        [sys.executable, *prefix, *args], cwd=REPO, env={**env, "CURATE_STAGING": str(staging)},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if proc.returncode not in (0, -9):
        raise AssertionError(f"curate {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.returncode


def _sets(pairs: list[str]) -> list[str]:
    return [a for pair in pairs for a in ("--set", pair)]


def _objects(fs, url: str, *subs: str) -> dict[str, bytes]:
    root = url.removeprefix("s3://")
    found = fs.find(root)
    names = {p: p[len(root) + 1 :] for p in found}
    return {name: fs.cat(p) for p, name in names.items() if ["", *name.split("/")][-2] in subs}


def _files(folder: Path, *subs: str) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.parent.name in subs
    }


def _losses(text: str) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_chain_on_s3_equals_the_local_chain(s3, demo_input, tiny_clip, demo_filter_run, demo_mixture, tmp_path):  # noqa: PLR0917
    env, fs = s3
    fs.put(str(demo_input), f"{BUCKET}/demo_input", recursive=True)
    fs.put_file(str(tiny_clip), f"{BUCKET}/models/curate-tiny-clip.pt")
    src, run = f"s3://{BUCKET}/demo_input", f"s3://{BUCKET}/runs"
    staging = tmp_path / "staging"

    filter_sets = [f"input.url_list.path={src}/urls.parquet", f"input.url_list.serve_dir={src}/files",
                   f"filters.clip_score.pretrained=s3://{BUCKET}/models/curate-tiny-clip.pt"]  # fmt: skip
    pipelines = REPO / "pipelines"
    _curate(env, staging, "filter", str(pipelines / "filter_demo.yaml"), *_sets(filter_sets), "--out", f"{run}/f")
    local_filter = demo_filter_run[0].out_dir
    assert _objects(fs, f"{run}/f", "shards", "parquet") == _files(local_filter, "shards", "parquet")
    remote_stats = json.loads(fs.cat(f"{BUCKET}/runs/f/stats.json"))
    local_stats = json.loads((local_filter / "stats.json").read_text())
    for key in ("kept_rows", "rejected", "funnel", "scores", "languages"):
        assert remote_stats[key] == local_stats[key], key

    en, zh = f"{src}/corpus_en.txt", f"{src}/corpus_zh.txt"
    build_sets = [
        f"sources.curated.run={run}/f",
        f"sources.text.paths=[{en}, {zh}]",
        "sources.synthdog.count=24",
        f"sources.synthdog.corpus_en=[{en}]",
        f"sources.synthdog.corpus_zh=[{zh}]",
        "sources.shapes.count=40",
    ]
    _curate(env, staging, "build", str(pipelines / "build_demo.yaml"), *_sets(build_sets), "--out", f"{run}/t")
    built = _objects(fs, f"{run}/t", "shards", "parquet")
    assert len(built) >= 14 and built == _files(demo_mixture / "t", "shards", "parquet")

    mix_sets = [f"inputs=[{run}/t]", "budget=600", "output.samples_per_shard=20"]
    mix = ["mix", str(pipelines / "mix_demo.yaml"), *_sets(mix_sets), "--out", f"{run}/m"]
    from curate.core import storage

    os.environ["CURATE_STAGING"] = str(staging)
    try:
        working = storage.working_folder(f"{run}/m")
    finally:
        del os.environ["CURATE_STAGING"]
    assert _curate(env, staging, *mix, crash=(working, "_chunks/write/*.json", 2, "after")) == -9
    assert not fs.exists(f"{BUCKET}/runs/m/_SUCCESS") and fs.exists(f"{BUCKET}/runs/m/_chunks/write")
    _curate(env, tmp_path / "another_machine", *mix)  # only object storage carries the killed run over
    mixed = _objects(fs, f"{run}/m", "shards", "parquet", "sft_images")
    assert mixed == _files(demo_mixture / "m", "shards", "parquet", "sft_images")
    assert fs.cat(f"{BUCKET}/runs/m/sft.json") == (demo_mixture / "m" / "sft.json").read_bytes()
    assert not fs.exists(f"{BUCKET}/runs/m/_chunks") and fs.exists(f"{BUCKET}/runs/m/_SUCCESS")

    train_sets = ["steps=4", "eval.batches=2", "eval.generate=1", f"model.vision.pretrained={tiny_clip}"]
    local_train = tmp_path / "train"
    train = ["train", str(pipelines / "train_demo.yaml")]
    _curate(env, staging, *train, *_sets([*train_sets, f"data.train=[{demo_mixture / 'm' / 'shards'}]"]),
            "--out", str(local_train))  # fmt: skip
    remote_sets = [*train_sets[:3], f"model.vision.pretrained=s3://{BUCKET}/models/curate-tiny-clip.pt"]
    _curate(env, staging, *train, *_sets([*remote_sets, f"data.train=[{run}/m/shards]"]), "--out", f"{run}/train")
    remote_losses = _losses(fs.cat(f"{BUCKET}/runs/train/metrics.jsonl").decode())
    assert remote_losses and remote_losses == _losses((local_train / "metrics.jsonl").read_text())
    assert fs.exists(f"{BUCKET}/runs/train/checkpoints/step-0000004.pt") and fs.exists(f"{BUCKET}/runs/train/_SUCCESS")

    # finished runs leave no working copy of their outputs on local disk (the killed mix's first machine does)
    folders = [staging / "out", tmp_path / "another_machine" / "out"]
    left = [p for f in folders for p in f.rglob("*") if p.is_file() and p.name != ".curate-mirror.json"]
    left = [p for p in left if not p.is_relative_to(working.parent)]
    assert all(p.name.endswith(".lock") for p in left), left


def test_export_from_the_bucket_to_the_bucket(s3, demo_mixture, tmp_path):
    """Every image the LLaVA JSON names is an object beside it, and no image stays on local disk."""
    from curate.core.shards import read_output

    env, fs = s3
    fs.put(str(demo_mixture / "t"), f"{BUCKET}/export_src/t", recursive=True)
    url = f"s3://{BUCKET}/exports/llava"
    _curate(env, tmp_path, "export", f"s3://{BUCKET}/export_src/t", "--format", "llava", "--out", url)
    items = json.loads(fs.cat(f"{BUCKET}/exports/llava/llava.json"))
    assert len(items) == sum(1 for _ in read_output(demo_mixture / "t", "parquet"))
    images = {i["image"] for i in items if "image" in i}
    assert images and images == {p.split("exports/llava/", 1)[1] for p in fs.find(f"{BUCKET}/exports/llava/images")}
    assert not list((tmp_path / "out").rglob("*.jpg"))
