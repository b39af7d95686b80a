"""The global half of the dedup stages of a filter run: decide, over every row of the run, which rows are
duplicates or contaminated, then write the decisions into the ledger.

1. decide: read the fingerprint columns of the ledger (never images), run the stages in config order, each on
   the rows still kept after the ones before it, and write `<out>/dedup/decisions.parquet` atomically (row_id,
   reject_reason, dup_of, dup_distance). Near and semantic searches run as Ray tasks (curate.dedup.near,
   curate.dedup.semantic).
2. apply: set those three columns in each ledger part that lacks them, atomically part by part.

Resume: decisions are computed only once every chunk is done, and never recomputed once written; applying
them is idempotent. A kill at any point therefore neither loses nor doubles a decision.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core.atomic import write_parquet_atomic
from curate.dedup.bands import unique_pairs
from curate.dedup.clusters import greedy_clusters, keep_rank
from curate.dedup.near import near_edges, window_matches
from curate.dedup.reference import nearest_reference, reference_embeddings, reference_table
from curate.dedup.semantic import semantic_edges
from curate.ledger import embeddings
from curate.ledger.embeddings import WINDOWS, part_paths
from curate.ledger.parts import LEDGER_DIR, read_ledger, to_ledger

log = logging.getLogger(__name__)
DEDUP_DIR = "dedup"
DECISIONS_SCHEMA = pa.schema(
    [("row_id", pa.int64()), ("reject_reason", pa.string()), ("dup_of", pa.string()), ("dup_distance", pa.float64())]
)
READ_COLUMNS = [
    "key",
    "row_id",
    "reject_reason",
    "width",
    "height",
    "clip_score",
    "image_sha256",
    "pixel_sha256",
    "phash",
    "dhash",
]


def decisions_path(out: Path) -> Path:
    return out / DEDUP_DIR / "decisions.parquet"


def run_global(out: Path, stages: list[Any], clip: Any = None) -> dict[str, int]:
    """Decide (unless decided before) and apply; returns rows rejected per reason. `clip`: the run's clip_score
    filter, whose model embeds reference images for decontaminate.eps."""
    path = decisions_path(out)
    if path.exists():
        decisions = pq.read_table(path)
        log.info("dedup: %d decisions already made; applying them", decisions.num_rows)
    else:
        decisions = decide(out, stages, clip)
        write_parquet_atomic(path, decisions)
    apply(out, decisions)
    reasons = decisions.column("reject_reason").to_pylist()
    return {r: reasons.count(r) for r in sorted(set(reasons))}


def decide(out: Path, stages: list[Any], clip: Any = None) -> pa.Table:
    ledger = read_ledger(out, READ_COLUMNS)
    alive = pc.is_null(ledger.column("reject_reason")).to_numpy(zero_copy_only=False)
    keys = np.asarray(ledger.column("key").to_pylist(), dtype=object)
    rank = keep_rank(_floats(ledger, "width"), _floats(ledger, "height"), _floats(ledger, "clip_score"), keys)
    row_ids = ledger.column("row_id").to_numpy()
    reason = np.full(ledger.num_rows, None, dtype=object)
    dup_of = np.full(ledger.num_rows, None, dtype=object)
    distance = np.full(ledger.num_rows, np.nan)
    for stage in stages:
        started = time.perf_counter()
        rows = np.flatnonzero(alive)
        if stage.name == "decontaminate":
            found = _contaminated(out, stage, ledger, rows, clip)
        else:
            found = _duplicates(out, stage, ledger, rows, rank=rank[rows], keys=keys)
        for where, why, of, dist in found:
            reason[where], dup_of[where], distance[where] = why, of, dist
            alive[where] = False
        rejected = sum(len(w) for w, *_ in found)
        log.info("%s: %d of %d rows rejected (%.1f s)", stage.name, rejected, len(rows), time.perf_counter() - started)
    decided = np.flatnonzero(reason != None)  # noqa: E711 - numpy elementwise comparison
    return pa.Table.from_arrays(
        [
            pa.array(row_ids[decided], pa.int64()),
            pa.array(reason[decided].tolist(), pa.string()),
            pa.array(dup_of[decided].tolist(), pa.string()),
            pa.array(distance[decided], pa.float64()),
        ],
        schema=DECISIONS_SCHEMA,
    ).sort_by("row_id")


def _floats(table: pa.Table, column: str) -> np.ndarray:
    return pc.cast(table.column(column), pa.float64()).to_numpy(zero_copy_only=False)


Found = list[tuple[np.ndarray, str, np.ndarray, np.ndarray]]  # (rows, reason, dup_of, distance)


def _duplicates(
    out: Path, stage: Any, ledger: pa.Table, rows: np.ndarray, *, rank: np.ndarray, keys: np.ndarray
) -> Found:
    """Rows (ledger positions, out of `rows`) that duplicate a kept row, with the representative's key."""
    empty = (np.empty(0, np.int64),) * 3
    if stage.name == "dedup_exact":
        column = ledger.column(stage.digest_column()).take(pa.array(rows))
        valid = column.is_valid().to_numpy(zero_copy_only=False)  # no digest: rejected per row, never grouped
        rows, rank, column = rows[valid], rank[valid], pc.drop_null(column)
        group = pc.dictionary_encode(column).combine_chunks().indices.to_numpy(zero_copy_only=False)
        rep, dist = greedy_clusters(group.astype(np.int64), empty, rank)
    elif stage.name == "dedup_near":
        # Rows without a hash (never decoded) were rejected as image:decode_error per row; none may share a group.
        column = ledger.column(stage.hash).take(pa.array(rows))
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        rows, rank = rows[valid], rank[valid]
        hashes = pc.drop_null(column).to_numpy(zero_copy_only=False)
        distinct, group = np.unique(hashes, return_inverse=True)
        edges = near_edges(distinct, stage.radius, stage.partitions)
        if stage.crop_windows:
            edges = _with_crops(
                out, stage, ledger.column("row_id").to_numpy()[rows], group, distinct=distinct, edges=edges
            )
        rep, dist = greedy_clusters(group, edges, rank)
    else:  # dedup_semantic
        row_ids = ledger.column("row_id").to_numpy()[rows]
        a, b, d = semantic_edges(
            embeddings.part_paths(out),
            np.sort(row_ids),
            eps=stage.eps,
            clusters=stage.clusters,
            iterations=stage.iterations,
            seed=stage.seed,
        )
        position = np.argsort(row_ids)
        to_index = lambda ids: position[np.searchsorted(row_ids, ids, sorter=position)]  # noqa: E731
        group = np.arange(len(rows), dtype=np.int64)
        rep, dist = greedy_clusters(group, (to_index(a), to_index(b), d), rank)
    found = np.flatnonzero(rep >= 0)
    reason = stage.reasons[0]
    return [(rows[found], reason, keys[rows[rep[found]]], dist[found])] if len(found) else []


def _with_crops(out: Path, stage: Any, row_ids: np.ndarray, group: np.ndarray, *, distinct: np.ndarray, edges):  # noqa: ANN001, ANN202
    """The near edges plus crop matches: a row whose crop window is within crop_radius of another hash."""
    position = np.argsort(row_ids)
    matched, other, d = window_matches(part_paths(out, WINDOWS), np.sort(row_ids), distinct, stage.crop_radius)
    mine = group[position[np.searchsorted(row_ids, matched, sorter=position)]]
    apart = mine != other
    g1 = np.concatenate([edges[0], np.minimum(mine, other)[apart]])
    g2 = np.concatenate([edges[1], np.maximum(mine, other)[apart]])
    return unique_pairs(g1, g2, np.concatenate([edges[2], d[apart]]))


def _contaminated(out: Path, stage: Any, ledger: pa.Table, rows: np.ndarray, clip: Any) -> Found:
    hashes = pc.fill_null(ledger.column(stage.hash).take(pa.array(rows)), 0).to_numpy(zero_copy_only=False)
    valid = ledger.column(stage.hash).take(pa.array(rows)).is_valid().to_numpy(zero_copy_only=False)
    digests = ledger.column("image_sha256").take(pa.array(rows)).to_pylist()
    found: Found = []
    left = np.ones(len(rows), bool)
    for ref in stage.sets:
        reference = reference_table(ref, stage.hash, out / DEDUP_DIR / "reference")
        best, dist = nearest_reference(hashes, digests, reference, stage.hash, stage.radius)
        hit = np.flatnonzero((best >= 0) & valid & left)
        left[hit] = False
        ids = np.asarray(reference.column("ref_id").to_pylist(), dtype=object)
        if len(hit):
            found.append((rows[hit], f"contaminated:{ref.name}", ids[best[hit]], dist[hit].astype(np.float64)))
        if stage.eps and left.any():  # then by CLIP embedding: cosine >= 1 - eps
            vectors = reference_embeddings(ref, reference, clip, out / DEDUP_DIR / "reference")
            near, similarity, which = _nearest_embeddings(out, ledger, rows[left], vectors)
            close = np.flatnonzero(left)[near & (similarity >= 1 - stage.eps)]
            picked = which[near & (similarity >= 1 - stage.eps)]
            left[close] = False
            if len(close):
                distance = 1 - similarity[near & (similarity >= 1 - stage.eps)]
                found.append((rows[close], f"contaminated:{ref.name}", ids[picked], distance.astype(np.float64)))
    return found


def _nearest_embeddings(
    out: Path, ledger: pa.Table, rows: np.ndarray, vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of `rows`: whether it has an embedding, its best cosine with `vectors`, and which one; one
    embeddings part at a time."""
    usable = np.flatnonzero(np.isfinite(vectors).all(axis=1))
    has = np.zeros(len(rows), bool)
    similarity = np.full(len(rows), -np.inf)
    which = np.zeros(len(rows), np.int64)
    row_ids = ledger.column("row_id").to_numpy()[rows]
    order = np.argsort(row_ids)
    if not len(usable):
        return has, similarity, which
    for path in embeddings.part_paths(out):
        got, x = embeddings.read_part(path, row_ids)
        if not len(got):
            continue
        at = order[np.searchsorted(row_ids, got, sorter=order)]
        cosine = x @ vectors[usable].T
        has[at], similarity[at], which[at] = True, cosine.max(axis=1), usable[cosine.argmax(axis=1)]
    return has, similarity, which


def apply(out: Path, decisions: pa.Table) -> int:
    """Write the decisions into every ledger part they touch; returns the parts rewritten."""
    ids = decisions.column("row_id").to_numpy()
    rewritten = 0
    for path in sorted((out / LEDGER_DIR).glob("part-*.parquet")):
        part = pq.read_table(path)
        at = np.searchsorted(ids, part.column("row_id").to_numpy())
        at = np.minimum(at, max(len(ids) - 1, 0))
        hit = (ids[at] == part.column("row_id").to_numpy()) if len(ids) else np.zeros(part.num_rows, bool)
        if not hit.any():
            continue
        take = pa.array(np.where(hit, at, 0))
        mask = pa.array(hit)
        updated = {
            "reject_reason": pc.if_else(mask, decisions.column("reject_reason").take(take), part["reject_reason"]),
            "dup_of": pc.if_else(mask, decisions.column("dup_of").take(take), part["dup_of"]),
            "dup_distance": pc.if_else(mask, decisions.column("dup_distance").take(take), part["dup_distance"]),
        }
        new = part
        for name, column in updated.items():
            new = new.set_column(new.schema.get_field_index(name), name, column)
        new = to_ledger(new)
        if new.equals(part):
            continue  # applied before a kill
        write_parquet_atomic(path, new)
        rewritten += 1
    log.info("dedup: %d decisions written into %d ledger parts", decisions.num_rows, rewritten)
    return rewritten
