"""pipelines/filter_dedup.yaml on the demo with planted duplicates (issue 17): every tier rejects rows, every row
ends in the ledger exactly once, and each decision names the row kept in its place."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, demo_overrides

from curate.commands.filter import run as pipeline
from curate.commands.filter.config import load as load_filter
from curate.dedup.run import decisions_path
from curate.ledger.embeddings import part_paths, read_part
from curate.ledger.parts import read_ledger

TIERS = ("contaminated:demo_eval", "duplicate:exact", "duplicate:near", "duplicate:semantic")


@pytest.fixture(scope="module")
def dedup_run(demo_input, tiny_clip, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("dedup") / "filter_dedup"
    sets = [
        *demo_overrides(demo_input, tiny_clip, out),
        f"input.url_list.path={demo_input / 'urls_dedup.parquet'}",
        f"filters.decontaminate.sets=[{{name: demo_eval, folder: {demo_input / 'reference'}}}]",
    ]
    cfg = load_filter(REPO / "pipelines" / "filter_dedup.yaml", sets)
    return cfg, pipeline.run_filter(cfg)


def test_every_tier_rejects_planted_rows_and_every_row_ends_once(dedup_run, demo_input):
    cfg, stats = dedup_run
    planted = pq.read_table(demo_input / "urls_dedup.parquet").to_pandas()
    ledger = read_ledger(cfg.out_dir).to_pandas().set_index("row_id").sort_index()
    assert list(ledger.index) == list(range(len(planted)))  # one ledger row per input row
    assert stats["input_rows"] == stats["kept_rows"] + sum(stats["rejected"].values())
    for reason in TIERS:
        assert stats["rejected"].get(reason, 0) >= 1, (reason, stats["rejected"])
    funnel = {f["stage"]: f["rejected"] for f in stats["funnel"]}
    assert all(funnel[s] >= 1 for s in ("decontaminate", "dedup_exact", "dedup_near", "dedup_semantic"))
    kind = planted["demo_kind"].to_numpy()
    by_key = ledger.set_index("key")
    rejected = ledger[ledger.reject_reason.isin(TIERS[1:])]
    representatives = set(rejected.dup_of)
    for row_id in ledger.index[(kind == "dup_copy") | (kind == "dup_recaption")]:
        row = ledger.loc[row_id]  # a byte copy: it, or the row it copies, is an exact duplicate of the other
        assert row.reject_reason == "duplicate:exact" or row.key in representatives, row
    for row in rejected.itertuples():  # the row named is one the tier saw alive: kept, or removed by a later tier
        named = by_key.loc[row.dup_of]
        later = TIERS[TIERS.index(row.reject_reason) + 1 :]
        assert named.reject_reason is None or named.reject_reason in later, (row, named)
        assert row.dup_distance >= 0 and (row.reject_reason != "duplicate:exact" or row.dup_distance == 0)
    contaminated = ledger[ledger.reject_reason == "contaminated:demo_eval"]
    assert sorted(contaminated.dup_of.str.split(":").str[1]) == sorted(
        p.name for p in (demo_input / "reference").iterdir()
    )
    kept_keys = set(ledger.key[ledger.reject_reason.isna()])
    shard_keys = {
        k for p in sorted((cfg.out_dir / "parquet").glob("*.parquet")) for k in pq.read_table(p)["key"].to_pylist()
    }
    assert shard_keys == kept_keys  # the shards hold exactly the rows the dedup stages kept


def test_embeddings_are_saved_per_chunk_as_float16(dedup_run):
    cfg, _ = dedup_run
    paths = part_paths(cfg.out_dir)
    assert paths
    table = pq.read_table(paths[0])
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.value_type == pa.float16()
    ids, vectors = read_part(paths[0])
    assert len(ids) == table.num_rows and abs(float((vectors**2).sum(axis=1).mean()) - 1) < 0.01


def test_a_rerun_decides_nothing_again_and_changes_nothing(dedup_run):
    cfg, stats = dedup_run
    before = pq.read_table(decisions_path(cfg.out_dir))
    ledger = read_ledger(cfg.out_dir)
    (cfg.out_dir / "_SUCCESS").unlink()  # an interrupted run after the decisions: resume applies, never redecides
    again = pipeline.run_filter(cfg)
    assert pq.read_table(decisions_path(cfg.out_dir)).equals(before)
    assert read_ledger(cfg.out_dir).equals(ledger)
    assert again["rejected"] == stats["rejected"]


def test_inspect_shows_each_duplicate_beside_the_row_kept_in_its_place(dedup_run, tmp_path):
    from curate.inspect.api import preview, views

    cfg, _ = dedup_run
    shown = views([cfg.out_dir], status="duplicate", n=8)
    assert len(shown) == 8
    for removed, kept in zip(shown[::2], shown[1::2], strict=True):
        assert removed.status.startswith("duplicate:") and kept.key == removed.dup_of
        assert (
            any("at distance" in d for d in removed.details) and kept.details[0] == f"kept in place of {removed.key}"
        )
        assert removed.image and kept.image
    contaminated = views([cfg.out_dir], status="contaminated", n=20)
    assert len(contaminated) == 8 and all(v.status == "reference" and v.image for v in contaminated[1::2])
    count, _ = preview([cfg.out_dir], tmp_path / "pairs.png", status="duplicate", n=6)
    assert count == 6 and (tmp_path / "pairs.png").stat().st_size > 10_000


def test_decontaminate_by_clip_embedding_finds_a_mirrored_reference_image(dedup_run, tiny_clip, tmp_path):
    """decontaminate.eps: a mirror image (pHash 28-40 bits away) is found by the CLIP embedding instead."""
    import io

    from PIL import Image, ImageOps

    from curate.core.images import TarReader, read_image_bytes
    from curate.dedup.reference import ReferenceSet
    from curate.dedup.run import decide
    from curate.filters.clip_score import ClipScore
    from curate.filters.dedup import Decontaminate

    cfg, _ = dedup_run
    kept = read_ledger(cfg.out_dir).to_pandas().query("reject_reason.isna()").iloc[0]
    data = read_image_bytes(kept.image_path, kept.image_member, TarReader())
    (tmp_path / "refs").mkdir()
    buffer = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(data)).convert("RGB")).save(buffer, format="JPEG", quality=90)
    (tmp_path / "refs" / "mirror.jpg").write_bytes(buffer.getvalue())
    stage = Decontaminate(sets=(ReferenceSet(name="mirrored", folder=str(tmp_path / "refs")),), radius=0, eps=0.05)
    clip = ClipScore(model="curate-tiny-clip", pretrained=str(tiny_clip), min_score=0.7)
    decisions = decide(cfg.out_dir, [stage], clip).to_pandas().set_index("row_id")
    row = decisions.loc[kept.row_id]
    assert row.reject_reason == "contaminated:mirrored" and row.dup_of == "mirrored:mirror.jpg"
    assert 0 <= row.dup_distance <= 0.05
    hashed = Decontaminate(sets=stage.sets, radius=4)  # by hash alone the mirror image is not found
    assert kept.row_id not in decide(cfg.out_dir, [hashed]).to_pandas().row_id.tolist()
