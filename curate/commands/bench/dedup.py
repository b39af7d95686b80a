"""P7: deduplication (issue 17). Three measurements, each in child processes:

a. Planted duplicates (curate.dedup.planted, from the real photos of the shared data): a real `curate filter` run
   over the planted set (served on 127.0.0.1, downloaded with img2dataset, `download.resize_mode: no`, so images keep
   their size; img2dataset still re-encodes every image as JPEG q95, identically for identical bytes), with only
   the dedup stages on: `dedup_exact` and `dedup_near` (pHash, the default radius, crop windows on). The ledger's
   decisions (key -> dup_of) are mapped back to the planted keys through row_id and scored with
   `score_decisions` per variant, per tier and overall:
   - tier `exact`: only the rows the run rejected as `duplicate:exact` count as merged;
   - tier `near`: every `duplicate:*` decision of the run, i.e. the near tier as it runs, after the exact tier
     (the acceptance line "the near tier's recall >= 0.95 over copy / re-encode / resize / crop / recaption,
     precision >= 0.99 overall" is checked on this tier).
   Flips do not count as duplicates (a merged flip is a false positive; how often flips were merged is reported).
   `dedup_semantic` is left out: the only CLIP here is the demo's tiny one (trained on crops of a few demo photos,
   or random), whose embeddings of real photos say nothing; a semantic figure from it would not be meaningful.
b. Peer: Data-Juicer's `image_deduplicator` (imagededup PHash, identical hash strings only, first of each group
   kept) on the same planted files, scored the same way. Data-Juicer returns only the samples it kept; each
   removed sample's `dup_of` is the first sample with the same imagededup PHash, computed with Data-Juicer's own
   image loader and hasher in its venv, and checked to reproduce exactly Data-Juicer's kept list.
c. Scale: synthetic 64-bit hashes with planted near pairs through the near stage as a filter run uses it
   (np.unique, near_edges as Ray tasks on a local 2-CPU session, keep_rank, greedy_clusters), in a child process
   whose whole tree (Ray's processes included) is sampled (curate.core.process_memory); on a subset the banded
   pairs are compared with bands.brute_force_pairs.

The slow tests tests/test_dedup_planted.py and tests/test_dedup_scale.py run (a) and (c) and assert the bounds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from curate.commands.bench.report import Figure

log = logging.getLogger(__name__)
NEAR_TIER_VARIANTS = ("copy", "reencode", "resize", "crop", "recaption")  # the acceptance line's variants
PLANTED_FILTERS = (
    {"dedup_exact": {}},
    {"dedup_near": {"hash": "phash", "crop_windows": True}},  # the default radius (4) and crop radius (2)
)
ACCEPT_RECALL, ACCEPT_PRECISION = 0.95, 0.99
SCALE_BOUND_GIB = 2.0  # issue 17: the process tree of the near stage at 1M hashes


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}


def _run_tree(command: list[str], what: str, timeout: float | None = None, every_s: float = 0.25) -> dict[str, Any]:
    """Run `command` in its own process group, sampling the memory of its whole tree; kill the group on timeout."""
    from curate.core.process_memory import TreeMemory

    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    timed_out = False
    with TreeMemory(proc.pid, every_s=every_s) as memory:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the group this Popen started: the child and its Ray processes
            _, err = proc.communicate()
    wall = time.perf_counter() - started
    if not timed_out and proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "timed_out": timed_out,
        **memory.as_dict(),
        "top": memory.breakdown().splitlines()[:6],
    }


# ---------------------------------------------------------------------------------------------------------------
# a. planted duplicates through a real filter run


def planted_filter_config(urls: Path, serve_dir: Path, out: Path, filters=PLANTED_FILTERS) -> dict[str, Any]:  # noqa: ANN001
    return {
        "name": "dedup_planted",
        "input": {
            "url_list": {"path": str(urls), "url_col": "url", "caption_col": "caption", "serve_dir": str(serve_dir)},
            "rows_per_chunk": 200,
        },
        "download": {
            "resize_mode": "no",  # keep every image at its size (resize variants stay resized)
            "processes": 2,
            "threads": 16,
            "timeout": 10,
            "allow_networks": ["127.0.0.1/32"],
        },
        "filters": [dict(f) for f in filters],
        "output": {"dir": str(out), "samples_per_shard": 500},
        "ray": {"num_cpus": 2},
    }


def _write_url_list(samples: list[dict], path: Path, serve_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls = [Path(s["path"]).relative_to(serve_dir).as_posix() for s in samples]
    table = pa.table(
        {"url": urls, "caption": [s["caption"] for s in samples], "planted_key": [s["key"] for s in samples]}
    )
    pq.write_table(table, path)


def ledger_decisions(out: Path, samples: list[dict]) -> dict[str, dict[str, Any]]:
    """planted key -> {reason, dup_of (planted key or None), distance} from the run's ledger. The run's keys are
    row numbers: row_id i is samples[i] (the URL list was written in that order; checked through the URL)."""
    from curate.ledger.parts import read_ledger

    ledger = read_ledger(out, ["row_id", "key", "url", "reject_reason", "dup_of", "dup_distance"]).to_pylist()
    if len(ledger) != len(samples):
        raise RuntimeError(f"ledger has {len(ledger)} rows for {len(samples)} planted samples")
    planted_of_key = {}
    for row in ledger:
        sample = samples[row["row_id"]]
        if row["url"].rsplit("/", 1)[-1] != Path(sample["path"]).name:
            raise RuntimeError(f"row {row['row_id']}: url {row['url']} is not {sample['path']}")
        planted_of_key[row["key"]] = sample["key"]
    found = {}
    for row in ledger:
        of = row["dup_of"]
        found[planted_of_key[row["key"]]] = {
            "reason": row["reject_reason"],
            "dup_of": planted_of_key.get(of, of) if of is not None else None,
            "distance": row["dup_distance"],
        }
    return found


def score_tiers(samples: list[dict], decisions: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """score_decisions for the exact tier alone and for the near tier (every duplicate decision of the run)."""
    from curate.dedup.planted import score_decisions

    exact = {k: d["dup_of"] for k, d in decisions.items() if d["reason"] == "duplicate:exact"}
    near = {k: d["dup_of"] for k, d in decisions.items() if (d["reason"] or "").startswith("duplicate:")}
    return {"exact": score_decisions(samples, exact), "near": score_decisions(samples, near)}


def planted_measurement(
    shared_data: Path,
    work: Path,
    *,
    per_variant: int | None = None,
    seed: int = 0,
    filters=PLANTED_FILTERS,  # noqa: ANN001
) -> dict[str, Any]:
    """Build the planted set, run `curate filter` with the dedup stages over it, score the decisions."""
    from curate.dedup.planted import make_planted_set

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    serve_dir = (work / "planted").resolve()
    started = time.perf_counter()
    samples = make_planted_set(Path(shared_data), serve_dir, seed=seed, per_variant=per_variant)
    planted_s = time.perf_counter() - started
    urls, out, config = work / "planted_urls.parquet", work / "run", work / "dedup_planted.yaml"
    _write_url_list(samples, urls, serve_dir)
    import yaml

    config.write_text(yaml.safe_dump(planted_filter_config(urls, serve_dir, out, filters), sort_keys=False))
    command = [sys.executable, "-m", "curate", "--log-level", "WARNING", "filter", str(config), "--overwrite"]
    log.info(
        "P7: curate filter with %s on %d planted samples", ", ".join(next(iter(f)) for f in filters), len(samples)
    )
    run = _run_tree(command, "curate filter on the planted set")
    stats = json.loads((out / "stats.json").read_text())
    decisions = ledger_decisions(out, samples)
    tiers = score_tiers(samples, decisions)
    by_key = {s["key"]: s for s in samples}
    reasons_per_variant: dict[str, Counter] = {}
    for key, d in decisions.items():
        reasons_per_variant.setdefault(by_key[key]["variant"], Counter())[d["reason"] or "kept"] += 1
    misses = _misses(samples, decisions)
    return {
        "samples": len(samples),
        "originals": sum(s["variant"] in ("original", "negative") for s in samples),
        "per_variant": per_variant,
        "filters": [next(iter(f)) for f in filters],
        "tiers": tiers,
        "reasons_per_variant": {v: dict(c) for v, c in sorted(reasons_per_variant.items())},
        "not_deduplicated": {r: n for r, n in stats["rejected"].items() if not r.startswith("duplicate:")},
        "misses": misses,
        "false_merges": _false_merges(samples, decisions),
        "wall_s": run["wall_s"],
        "samples_per_s": len(samples) / run["wall_s"],
        "run_rows_per_s": stats.get("rows_per_s"),
        "planted_build_s": round(planted_s, 1),
        "peak_pss_gib": run["peak_pss_gib"],
        "peak_rss_gib": run["peak_rss_gib"],
        "decisions": decisions,
        "samples_list": samples,
    }


def _roots(samples: list[dict], dup_of: dict[str, str | None]) -> dict[str, str]:
    from curate.dedup.planted import representatives

    return representatives([s["key"] for s in samples], dup_of)


def _misses(samples: list[dict], decisions: dict[str, dict[str, Any]]) -> list[dict]:
    """Planted duplicates (flips excepted) not merged with their original by the near tier."""
    dup_of = {k: d["dup_of"] for k, d in decisions.items() if (d["reason"] or "").startswith("duplicate:")}
    root = _roots(samples, dup_of)
    missed = []
    for s in samples:
        if s["variant"] in NEAR_TIER_VARIANTS and root[s["key"]] != root[s["source"]]:
            d = decisions[s["key"]]
            missed.append({"key": s["key"], "variant": s["variant"], "detail": s["detail"], "reason": d["reason"]})
    return missed


def _false_merges(samples: list[dict], decisions: dict[str, dict[str, Any]]) -> list[dict]:
    """Rows merged into a representative of another duplicate group (flips apart): what precision counts wrong."""
    from curate.dedup.planted import _group

    by_key = {s["key"]: s for s in samples}
    dup_of = {k: d["dup_of"] for k, d in decisions.items() if (d["reason"] or "").startswith("duplicate:")}
    root = _roots(samples, dup_of)
    wrong = []
    for key, of in dup_of.items():
        if of is not None and _group(by_key[key], False) != _group(by_key[root[key]], False):
            d = decisions[key]
            wrong.append({"key": key, "dup_of": of, "reason": d["reason"], "distance": d["distance"]})
    return wrong


def table_lines(result: dict[str, Any], peer: dict[str, Any] | None = None) -> list[str]:
    """Per variant: recall by tier (and Data-Juicer's), then precision."""
    exact, near = result["tiers"]["exact"], result["tiers"]["near"]
    dj = (peer or {}).get("scores")
    head = f"{'variant':<10} {'n':>4} {'exact':>7} {'near':>7}" + (f" {'DJ':>7}" if dj else "")
    lines = [head]
    for variant, row in near["per_variant"].items():
        name = "recall" if "recall" in row else "merged"
        cells = [exact["per_variant"][variant][name], row[name]] + ([dj["per_variant"][variant][name]] if dj else [])
        label = variant + ("*" if name == "merged" else "")
        lines.append(f"{label:<10} {row['n']:>4} " + " ".join(f"{c:>7.3f}" for c in cells))
    for what in ("recall", "precision"):
        cells = [exact["overall"][what], near["overall"][what]] + ([dj["overall"][what]] if dj else [])
        lines.append(f"{'overall ' + what[:4]:<10} {'':>4} " + " ".join(f"{c:>7.3f}" for c in cells))
    lines.append("* flip: share merged with its original (not a duplicate: counted wrong in precision)")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# b. the Data-Juicer peer on the same planted files

DJ_HASH_SCRIPT = """
import json, sys
import numpy as np
from imagededup.methods import PHash
from data_juicer.utils.mm_utils import load_image
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
hasher = PHash(verbose=False)
out = {r["key"]: hasher.encode_image(image_array=np.array(load_image(r["image"]))) for r in rows}
json.dump(out, open(sys.argv[2], "w"))
"""


def dj_dup_of(samples: list[dict], kept: list[str], hashes: dict[str, str] | None) -> tuple[dict, str]:
    """Data-Juicer's decisions as dup_of: a removed sample -> the first sample (in input order) with the same
    PHash string, which is the one it kept. Returns (dup_of, how). Without hashes, or when the hashes do not
    reproduce Data-Juicer's kept list, falls back to: removed -> the first kept sample of its planted group, or,
    where none of its group was kept, the first kept sample (so it counts as a wrong merge). That fallback is
    optimistic for Data-Juicer (a removed sample is assumed to match its own group wherever it could)."""
    kept_set = set(kept)
    if hashes is not None:
        first: dict[str, str] = {}
        dup_of: dict[str, str | None] = {}
        for s in samples:
            h = hashes[s["key"]]
            if h and h in first:
                dup_of[s["key"]] = first[h]
            else:
                first.setdefault(h, s["key"])
        if {s["key"] for s in samples} - set(dup_of) == kept_set:
            return dup_of, "exact: removed -> first sample with the same imagededup PHash (reproduces DJ's kept list)"
        log.warning("P7: recomputed PHashes do not reproduce Data-Juicer's kept list; using the group fallback")
    from curate.dedup.planted import _group

    first_kept: dict[str, str] = {}
    for s in samples:
        if s["key"] in kept_set:
            first_kept.setdefault(_group(s, False), s["key"])
    some_kept = next((s["key"] for s in samples if s["key"] in kept_set), None)
    dup_of = {s["key"]: first_kept.get(_group(s, False), some_kept) for s in samples if s["key"] not in kept_set}
    return dup_of, "fallback: removed -> a kept sample of its planted group if any (optimistic for DJ)"


def peer_measurement(samples: list[dict], work: Path, peer_python: str, num_proc: int = 2) -> dict[str, Any]:
    from curate.commands.bench.dedup_peer import run_dj_dedup
    from curate.dedup.planted import score_decisions

    result = run_dj_dedup(samples, work, peer_python, num_proc)
    if "error" in result:
        return {"error": result["error"]}
    hashes = None
    try:
        jsonl, out = Path(work) / "dj_dedup_samples.jsonl", Path(work) / "dj_phash.json"
        subprocess.run(
            [peer_python, "-c", DJ_HASH_SCRIPT, str(jsonl), str(out)],
            env=_env(),
            capture_output=True,
            check=True,
            timeout=1800,
        )
        hashes = json.loads(out.read_text())
    except (subprocess.SubprocessError, OSError, ValueError) as err:
        log.warning("P7: could not recompute Data-Juicer's PHashes: %s", err)
    dup_of, how = dj_dup_of(samples, result["kept"], hashes)
    return {
        "scores": score_decisions(samples, dup_of),
        "kept": len(result["kept"]),
        "seconds": result["seconds"],
        "samples_per_s": result["samples"] / result["seconds"],
        "data_juicer": result.get("data_juicer"),
        "dup_of_from": how,
    }


# ---------------------------------------------------------------------------------------------------------------
# c. the near stage at scale on synthetic hashes


def synthetic_hashes(count: int, pairs: int, radius: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` int64 hashes: count - pairs uniformly random, then one partner for each of `pairs` random ones with
    1..radius random bits flipped. Returns (hashes, planted pairs as an (pairs, 2) index array)."""
    rng = np.random.default_rng([seed, radius])
    pairs = min(pairs, count // 2)
    base = np.frombuffer(rng.bytes(8 * (count - pairs)), dtype=np.uint64).copy()
    source = rng.choice(count - pairs, pairs, replace=False)
    flips = rng.integers(1, max(radius, 1) + 1, pairs)
    noise = rng.random((pairs, 64))
    cut = np.sort(noise, axis=1)[np.arange(pairs), flips - 1]
    chosen = noise <= cut[:, None]  # exactly `flips` bits per pair
    masks = np.bitwise_or.reduce(
        np.where(chosen, np.uint64(1) << np.arange(64, dtype=np.uint64), np.uint64(0)), axis=1
    )
    hashes = np.concatenate([base, base[source] ^ masks]).view(np.int64)
    planted = np.stack([source, np.arange(count - pairs, count)], axis=1)
    return hashes, planted


def _codes(i: np.ndarray, j: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(i, j).astype(np.int64) * size + np.maximum(i, j)


def scale_worker(count: int, pairs: int, radius: int, subset: int, seed: int) -> dict[str, Any]:
    """The measured child: the near stage over `count` hashes under a local 2-CPU Ray session, then the subset
    check against brute force."""
    from curate.core.ray_session import ray_session
    from curate.dedup.bands import brute_force_pairs, unique_pairs
    from curate.dedup.clusters import greedy_clusters, keep_rank
    from curate.dedup.near import near_edges

    t = time.perf_counter()
    hashes, planted = synthetic_hashes(count, pairs, radius, seed)
    rng = np.random.default_rng(seed)
    width, height = rng.integers(200, 2000, count), rng.integers(200, 2000, count)
    clip = rng.random(count)
    keys = np.asarray([f"{i:09d}" for i in range(count)], dtype=object)
    result: dict[str, Any] = {
        "hashes": count,
        "planted_pairs": len(planted),
        "radius": radius,
        "generate_s": round(time.perf_counter() - t, 2),
    }
    t = time.perf_counter()
    with ray_session(None, 2):
        import ray

        ray.get(ray.remote(lambda: 0).remote())  # a worker up, so start-up is not in the stage's time
        result["ray_start_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        distinct, group = np.unique(hashes, return_inverse=True)
        edges = near_edges(distinct, radius)
        result["near_edges_s"] = round(time.perf_counter() - t, 2)
        t2 = time.perf_counter()
        rank = keep_rank(width, height, clip, keys)
        rep, _ = greedy_clusters(group, edges, rank)
        result["clusters_s"] = round(time.perf_counter() - t2, 2)
        result["stage_s"] = round(time.perf_counter() - t, 2)
        found = set(_codes(*edges[:2], len(distinct)).tolist())
        wanted = _codes(group[planted[:, 0]], group[planted[:, 1]], len(distinct))
        result["pairs_found"] = len(edges[0])
        result["planted_found"] = int(sum(c in found for c in wanted.tolist()))
        result["rows_rejected"] = int((rep >= 0).sum())
        result["distinct"] = len(distinct)

        # subset: both rows of up to a fifth of it in planted pairs, the rest random rows
        n_sub = min(subset, count)
        take = planted[: n_sub // 10].ravel()
        rest = np.setdiff1d(np.arange(count), take)
        idx = np.sort(np.concatenate([take, rng.choice(rest, n_sub - len(take), replace=False)]))
        sub = np.unique(hashes[idx])
        t = time.perf_counter()
        banded = near_edges(sub, radius)
        brute = unique_pairs(*brute_force_pairs(sub, radius))
        result["subset"] = {
            "hashes": int(len(sub)),
            "planted_pairs_inside": int(len(take) // 2),
            "banded_pairs": int(len(banded[0])),
            "brute_force_pairs": int(len(brute[0])),
            "equal": all(np.array_equal(a, b) for a, b in zip(banded, brute, strict=True)),
            "seconds": round(time.perf_counter() - t, 2),
        }
    return result


def scale_measurement(
    count: int, pairs: int, radius: int, subset: int, work: Path, *, seed: int = 0, timeout: float | None = 900
) -> dict[str, Any]:
    """scale_worker in a child process; its whole tree's peak memory (Ray's processes included)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"scale_{count}_r{radius}.json"
    out.unlink(missing_ok=True)
    args = json.dumps({"count": count, "pairs": pairs, "radius": radius, "subset": subset, "seed": seed})
    command = [sys.executable, "-m", "curate.commands.bench.dedup", "scale", args, str(out)]
    log.info("P7: near stage on %d synthetic hashes, radius %d", count, radius)
    run = _run_tree(command, f"near stage at {count} hashes", timeout=timeout)
    if run["timed_out"]:
        return {"hashes": count, "radius": radius, "timed_out": True, **run}
    return {**json.loads(out.read_text()), **run}


# ---------------------------------------------------------------------------------------------------------------
# the part


def bench_dedup(
    work: Path,
    shared_data: Path,
    *,
    per_variant: int | None,
    scale_hashes: int,
    scale_pairs: int,
    scale_subset: int,
    scale_radii: tuple[int, ...],
    scale_timeout_s: float,
    peer_python: str,
) -> list[Figure]:
    work = Path(work)
    figures = planted_figures(work, Path(shared_data), per_variant, peer_python)
    for radius in scale_radii:
        figures += scale_figures(
            scale_measurement(scale_hashes, scale_pairs, radius, scale_subset, work / "scale", timeout=scale_timeout_s)
        )
    return figures


def planted_figures(work: Path, shared_data: Path, per_variant: int | None, peer_python: str) -> list[Figure]:
    if not shared_data.is_dir():
        note = f"planted set not measured: shared data not found at {shared_data}"
        return [Figure(part="P7", measure="planted duplicates", value=None, unit="recall", note=note)]
    result = planted_measurement(shared_data, work / "planted_run", per_variant=per_variant)
    samples = result.pop("samples_list")
    result.pop("decisions")
    peer = peer_measurement(samples, work / "peer", peer_python)
    dj = peer.get("scores")
    near = result["tiers"]["near"]
    for line in table_lines(result, peer):
        log.info("P7: %s", line)
    base = {"baseline_name": "Data-Juicer phash"} if dj else {"baseline_name": peer.get("error", "")[:80]}
    where = f"{result['samples']} planted samples from {result['originals']} real photos"
    figures = []
    for variant in (*NEAR_TIER_VARIANTS, "flip"):
        row = near["per_variant"].get(variant)
        if row is None:
            continue
        name = "recall" if variant != "flip" else "merged"
        figures.append(
            Figure(
                part="P7",
                measure=f"planted {variant}: {name} (exact + near tiers)",
                value=row[name],
                unit=name if variant != "flip" else "share merged",
                baseline=dj["per_variant"][variant][name] if dj else None,
                **base,
                note=(
                    f"issue 17: >= {ACCEPT_RECALL} (n={row['n']})"
                    if variant != "flip"
                    else "a mirrored photo is not a duplicate: a merge is a false positive"
                ),
                details={
                    "n": row["n"],
                    "exact_tier": result["tiers"]["exact"]["per_variant"][variant][name],
                    "reasons": result["reasons_per_variant"].get(variant, {}),
                    "misses": [m for m in result["misses"] if m["variant"] == variant],
                },
            )
        )
    figures.append(
        Figure(
            part="P7",
            measure="planted set: precision overall (exact + near tiers)",
            value=near["overall"]["precision"],
            unit="precision",
            baseline=dj["overall"]["precision"] if dj else None,
            **base,
            note=f"issue 17: >= {ACCEPT_PRECISION}; {where}",
            details={
                "ours": near["overall"],
                "exact_tier": result["tiers"]["exact"]["overall"],
                "data_juicer": dj["overall"] if dj else None,
                "false_merges": result["false_merges"],
            },
        )
    )
    figures.append(
        Figure(
            part="P7",
            measure="planted set: recall over copy/reencode/resize/crop/recaption, at each tool's precision",
            value=near["overall"]["recall"],
            unit="recall",
            baseline=dj["overall"]["recall"] if dj else None,
            **base,
            note=(
                f"precision: curate {near['overall']['precision']:.3f}"
                + (f", Data-Juicer {dj['overall']['precision']:.3f}" if dj else f"; {peer.get('error', '')}")
            ),
            details={"curate": result, "data_juicer": peer},
        )
    )
    figures.append(
        Figure(
            part="P7",
            measure=f"dedup-only curate filter run ({', '.join(result['filters'])}), planted set",
            value=result["samples_per_s"],
            unit="samples/s",
            baseline=peer.get("samples_per_s"),
            **base,
            note="curate: the whole run, wall clock (serve, download, hashes with crop windows, Ray start, global "
            "decisions, shards); Data-Juicer: its process() only (hash + filter, files read from disk)",
            details={
                "wall_s": result["wall_s"],
                "samples": result["samples"],
                "peak_pss_gib": result["peak_pss_gib"],
                "data_juicer_seconds": peer.get("seconds"),
            },
        )
    )
    return figures


def scale_figures(scale: dict[str, Any]) -> list[Figure]:
    what = f"near stage, {scale['hashes']:,} synthetic hashes, radius {scale['radius']}, 2 CPUs"
    if scale.get("timed_out"):
        note = f"did not finish within {scale['wall_s']:.0f} s (killed)"
        return [Figure(part="P7", measure=what, value=None, unit="s", note=note, details=scale)]
    sub = scale["subset"]
    check = (
        f"subset of {sub['hashes']:,}: {sub['banded_pairs']} banded pairs vs {sub['brute_force_pairs']} by brute "
        f"force ({'equal' if sub['equal'] else 'DIFFERENT'}); planted pairs found "
        f"{scale['planted_found']}/{scale['planted_pairs']}"
    )
    return [
        Figure(
            part="P7",
            measure=f"{what}: seconds (near_edges + keep rule)",
            value=scale["stage_s"],
            unit="s",
            note=check,
            details=scale,
        ),
        Figure(
            part="P7",
            measure=f"{what}: peak PSS of the process tree",
            value=scale["peak_pss_gib"],
            unit="GiB",
            note=f"issue 17 bound: < {SCALE_BOUND_GIB:g} GiB; RSS summed {scale['peak_rss_gib']:.2f} GiB",
            details={"peak_rss_gib": scale["peak_rss_gib"], "top": scale["top"]},
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "scale":
        sys.exit("usage: python -m curate.commands.bench.dedup scale '{json args}' OUT.json")
    logging.basicConfig(level=logging.WARNING)
    found = scale_worker(**json.loads(sys.argv[2]))
    Path(sys.argv[3]).write_text(json.dumps(found, indent=2))
