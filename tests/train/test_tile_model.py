"""The reference model under the deepseek_vl2 image plan (issue 18): the connector's token layout equals the
plan's count, the collator gives each image exactly the plan's slots and views, and the model trains on them."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from curate.format.image_plan import GRID_SIDE, deepseek_tokens, plan_image
from curate.format.tokenizer import IGNORE, ByteTokenizer
from curate.train.connectors import TileConnector
from curate.train.data import Collator
from curate.train.model import VLM, DecoderConfig, VLMConfig
from curate.train.pixels import VIEW_PATCHES, ImageInput

TOK = ByteTokenizer()
VIEW = VIEW_PATCHES * 8  # curate-tiny-clip has 8 px patches: 27 x 27 patches per view, as SigLIP at 384 px


@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (4, 2), (3, 3), (1, 9), (9, 1)])
def test_connector_lays_out_exactly_the_plans_tokens(grid):
    columns, rows = grid
    torch.manual_seed(0)
    connector = TileConnector(vit_width=12, out_dim=8)
    views = torch.randn(1 + columns * rows, 27 * 27, 12)
    (tokens,) = connector(views, torch.tensor([[columns, rows]]))
    assert len(tokens) == deepseek_tokens(columns, rows)
    side = GRID_SIDE
    glob = tokens[: side * (side + 1)].reshape(side, side + 1, -1)
    assert torch.equal(glob[:, -1], connector.newline.expand(side, -1))  # a newline ends every global row
    assert torch.equal(tokens[side * (side + 1)], connector.separator)  # then the view separator
    local = tokens[side * (side + 1) + 1 :].reshape(rows * side, columns * side + 1, -1)
    assert torch.equal(local[:, -1], connector.newline.expand(rows * side, -1))
    grids = connector.view_grids(views)  # (V, 14, 14, D): tile (r, c) sits at rows r*14.., columns c*14..
    for r in range(rows):
        for c in range(columns):
            block = local[r * side : (r + 1) * side, c * side : (c + 1) * side]
            assert torch.equal(block, grids[1 + r * columns + c])


def test_two_by_two_unfold_pads_27_to_28_and_mixes_each_block_only():
    connector = TileConnector(vit_width=4, out_dim=8)
    views = torch.randn(1, 27 * 27, 4)
    base = connector.view_grids(views)
    assert base.shape == (1, 14, 14, 8)
    changed = views.clone().reshape(1, 27, 27, 4)
    changed[0, 2, 3] += 1.0  # patch (row 2, column 3) lies in output cell (1, 1) only
    after = connector.view_grids(changed.reshape(1, 27 * 27, 4))
    differs = (after - base).abs().sum(-1)[0] > 0
    assert differs.nonzero().tolist() == [[1, 1]]


def _jpeg(width, height, seed=0):
    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(height, width, 3, generator=g) * 255).to(torch.uint8).numpy()
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _item(key, width, height, recorded=True):
    sample = {
        "prefix": f"<img>{key}.jpg</img>OCR with grounding:",
        "target": "<ref> hello</ref><quad>(1,2),(3,4),(5,6),(7,8)</quad><|endoftext|>",
        "image_bytes": [_jpeg(width, height)],
        "image_sizes": [[width, height]] if recorded else [],
    }
    return {"key": key, "task": "ocr", "samples": [sample]}


def test_collator_gives_each_image_the_plans_slots_and_views():
    vision = ImageInput("deepseek_vl2", n_queries=16, image_size=64, view_size=VIEW)
    batch = Collator(TOK, vision, seq_len=4096)([_item("a", 800, 600), _item("b", 300, 200, recorded=False)])
    pad = TOK.ids["<imgpad>"]
    plans = [plan_image("deepseek_vl2", 800, 600), plan_image("deepseek_vl2", 300, 200)]
    assert [int((row == pad).sum()) for row in batch["input_ids"]] == [p.tokens for p in plans]
    assert batch["image_grids"].tolist() == [list(p.grid) for p in plans]
    assert batch["images"].shape == (sum(1 + len(p.tiles) for p in plans), 3, VIEW, VIEW)
    assert (batch["labels"][batch["input_ids"] == pad] == IGNORE).all()


def test_sample_too_long_for_its_tiles_is_left_out_and_counted():
    vision = ImageInput("deepseek_vl2", n_queries=16, image_size=64, view_size=VIEW)
    batch = Collator(TOK, vision, seq_len=1000)([_item("big", 1600, 1200), _item("small", 300, 200)])
    assert batch["skipped"] == {"too_long": 1} and batch["keys"] == ["small"]


def test_tile_model_trains_and_every_connector_part_learns():
    torch.manual_seed(0)
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=TOK.vocab_size, n_layer=1, n_head=2, n_embd=32), plan="deepseek_vl2"
    )
    model = VLM(cfg)
    assert not hasattr(model, "adapter")
    vision = ImageInput("deepseek_vl2", n_queries=16, image_size=64, view_size=VIEW)
    batch = Collator(TOK, vision, seq_len=4096)([_item("a", 700, 500)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        _, loss = model(
            batch["input_ids"], batch["segments"], batch["positions"], images=batch["images"],
            image_slots=batch["image_slots"], image_grids=batch["image_grids"], labels=batch["labels"],
        )  # fmt: skip
        loss.backward()
        if not losses:
            for name in ("connector.newline", "connector.separator", "connector.mlp.0.weight"):
                grad = dict(model.named_parameters())[name].grad
                assert grad is not None and grad.abs().sum() > 0, name
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="image_grids"):
        model.embed(batch["input_ids"], batch["images"], batch["image_slots"])
