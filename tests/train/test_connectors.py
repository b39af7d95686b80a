"""The connector family and SparseVLM pruning (issue 19): shapes, parameter counts, the perceiver's keys and
values, the MLP's one token per patch, the keep schedule, raters, recycling, and ratio 1 = the unpruned model."""

from __future__ import annotations

import pytest
import torch

from curate.format.tokenizer import ByteTokenizer
from curate.train.connectors import (
    AdapterConfig,
    CrossAttnAdapter,
    MlpProjector,
    PerceiverResampler,
    QFormer,
    image_tokens,
    make_connector,
)
from curate.train.model import VLM, Decoder, DecoderConfig, VLMConfig
from curate.train.sparse import Step, cluster_and_merge, pruned_forward, schedule, select_raters

C, D, N, NQ = 24, 32, 36, 9
CFG = AdapterConfig(n_queries=NQ, heads=4, depth=2)


def _params(module):
    return sum(p.numel() for p in module.parameters())


def _mha(dim, kdim=None):
    kdim = kdim or dim
    return dim * dim + 2 * dim * kdim + 3 * dim + dim * dim + dim  # q, k, v (+ biases) and the output projection


def _ln(dim):
    return 2 * dim


def _ff(dim):
    return dim * 4 * dim + 4 * dim + 4 * dim * dim + dim


@pytest.mark.parametrize(
    ("kind", "tokens", "params"),
    [
        ("qwen_resampler", NQ, NQ * D + C * D + 2 * _ln(D) + _mha(D) + _ln(D) + D * D),
        ("mlp2x_gelu", N, C * D + D + D * D + D),
        ("perceiver", NQ, NQ * D + C * D + D + 2 * (2 * _ln(D) + _mha(D) + _ln(D) + _ff(D)) + _ln(D)),
        (
            "qformer",
            NQ,
            NQ * D
            + _ln(D)
            + _ln(C)
            + (_mha(D) + _ln(D)) * 2
            + (_mha(D, C) + _ln(D))
            + _ff(D) * 2
            + _ln(D) * 2
            + D * D
            + D,
        ),  # fmt: skip
    ],
)
def test_each_connector_has_its_output_shape_and_parameter_count(kind, tokens, params):
    torch.manual_seed(0)
    connector = make_connector(kind, C, D, CFG)
    assert connector(torch.randn(2, N, C)).shape == (2, tokens, D)
    assert image_tokens(kind, N, CFG) == tokens
    assert _params(connector) == params


def test_the_perceivers_keys_and_values_include_the_latents():
    perceiver = PerceiverResampler(C, D, CFG)
    seen = []
    for layer in perceiver.layers:
        layer.attn.register_forward_hook(lambda _m, args, _o: seen.append((args[0].shape, args[1].shape)))
    perceiver(torch.randn(2, N, C))
    assert seen == [((2, NQ, D), (2, N + NQ, D))] * CFG.depth
    # and the latents' own values reach the output through them: a change to the latents alone changes it
    media = torch.randn(1, N, C)
    before = perceiver(media)
    with torch.no_grad():
        perceiver.latents[0] += 1.0
    assert not torch.allclose(before, perceiver(media))


def test_the_qformer_cross_attends_in_every_second_block():
    qformer = QFormer(C, D, AdapterConfig(n_queries=NQ, heads=4, depth=4))
    assert [block.cross is not None for block in qformer.blocks] == [True, False, True, False]


def test_the_mlp_keeps_one_token_per_patch():
    mlp = MlpProjector(C, D)
    x = torch.randn(1, N, C)
    out = mlp(x)
    changed = x.clone()
    changed[0, 5] += 1.0
    differs = (mlp(changed) - out).abs().sum(-1)[0] > 0
    assert out.shape == (1, N, D) and differs.nonzero().flatten().tolist() == [5]


def test_resampler_is_the_default_and_its_class_is_qwen_vls():
    assert isinstance(make_connector("qwen_resampler", C, D, AdapterConfig(n_queries=16, heads=4)), CrossAttnAdapter)


def test_the_published_schedule_is_reproduced_and_scaled():
    assert [(s.layer, s.keep) for s in schedule(32, 576, 192 / 576)] == [(2, 300), (6, 200), (15, 110)]
    assert [(s.layer, s.keep) for s in schedule(4, 16, 0.25)] == [(0, 6), (1, 4), (2, 2)]
    assert [(s.layer, s.keep) for s in schedule(4, 64, 0.5)] == [(0, 50), (1, 33), (2, 18)]
    assert schedule(4, 64, 1.0) == []
    assert all(s.keep >= 1 for s in schedule(4, 16, 0.01))


def test_rater_selection_equals_a_hand_computed_example():
    # two visual tokens, three text tokens; visual . text = [[2, 0, 0], [2, 0, 0]]: softmax rows
    # [e^2, 1, 1] / (e^2 + 2) = [0.787, 0.106, 0.106]; mean 1/3: only text token 0 is above it
    hidden = torch.tensor([[9.0, 9.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert select_raters(hidden, slice(1, 3), 3).tolist() == [0]
    # visual . text = [[0, 3, -1]]: softmax [1, e^3, e^-1] / 21.45 = [0.047, 0.936, 0.017], mean 1/3: token 1
    hidden = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 3.0], [0.0, -1.0]])
    assert select_raters(hidden, slice(0, 1), 1).tolist() == [1]


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    return Decoder(DecoderConfig(vocab_size=300, n_layer=4, n_head=4, n_embd=32)).eval()


def _sample(n_visual=20, n_text=7, prefix=3):
    torch.manual_seed(1)
    return torch.randn(prefix + n_visual + n_text, 32), slice(prefix, prefix + n_visual)


def test_keep_ratio_one_equals_the_unpruned_model(decoder):
    embeds, vis = _sample()
    t = embeds.shape[0]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    full = decoder(embeds[None], mask[None], torch.arange(t)[None])[0]
    logits, _, lengths = pruned_forward(decoder, embeds, vis, schedule(4, 20, 1.0), recycle=False)
    assert torch.allclose(logits, full, atol=1e-6) and lengths == [t] * 4


def test_pruning_keeps_exactly_the_schedule_and_never_a_text_token(decoder):
    embeds, vis = _sample()
    steps = [Step(0, 12), Step(1, 7), Step(2, 3)]
    logits, plan, lengths = pruned_forward(decoder, embeds, vis, steps, recycle=False)
    assert lengths == [30, 3 + 12 + 7, 3 + 7 + 7, 3 + 3 + 7]
    assert [len(k) for k in plan.kept] == [12, 7, 3] and logits.shape[0] == 13
    # the text tokens' logits after pruning come from the same text tokens: re-running with the plan agrees,
    # and appending a token changes nothing before it (the plan fixes the pruning, as a KV cache would)
    longer = torch.cat([embeds, torch.randn(1, 32)])
    again, _, _ = pruned_forward(decoder, longer, vis, steps, recycle=False, plan=plan)
    assert torch.allclose(again[:-1], logits, atol=1e-5)


def test_recycling_adds_the_scheduled_number_of_merged_tokens(decoder):
    embeds, vis = _sample(n_visual=60)
    steps = [Step(0, 20), Step(1, 10)]
    _, plan, lengths = pruned_forward(decoder, embeds, vis, steps, recycle=True)
    # layer 0: 40 pruned -> int(40 * 0.3) + 1 = 13 recycled -> int(13 / 10) + 1 = 2 clusters: 20 + 2 visual
    # layer 1: 12 pruned -> 4 recycled -> 1 cluster: 10 + 1 visual
    assert [len(c) for c in plan.clusters] == [2, 1]
    assert sum(len(g) for g in plan.clusters[0]) == 13 and sum(len(g) for g in plan.clusters[1]) == 4
    assert lengths == [3 + 60 + 7, 3 + 22 + 7, 3 + 11 + 7, 3 + 11 + 7]


def test_dpc_knn_finds_separated_groups():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(8, 4) * 0.05, torch.randn(8, 4) * 0.05 + 5.0])
    groups = sorted(sorted(g.tolist()) for g in cluster_and_merge(x, 2))
    assert groups == [list(range(8)), list(range(8, 16))]


def test_every_connector_runs_in_the_model_and_the_slots_match():
    tok = ByteTokenizer()
    for kind in ("qwen_resampler", "mlp2x_gelu", "perceiver", "qformer"):
        cfg = VLMConfig(
            decoder=DecoderConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32),
            adapter=AdapterConfig(n_queries=16, heads=2),
            connector=kind,
        )
        model = VLM(cfg)
        n = model.image_tokens(64)
        assert n == (64 if kind == "mlp2x_gelu" else 16)
        enc = tok.encode("<img>a.jpg</img>x", n)
        ids = torch.tensor([enc.input_ids])
        embeds = model.embed(ids, torch.randn(1, 3, 64, 64), torch.tensor([[0, enc.slots[0]]]))
        assert embeds.shape == (1, n + 3, 32)


def test_the_comparison_gathers_sparse_rows_and_refuses_unfinished_runs(tmp_path, capsys):
    import json

    from curate.commands.train.connector_comparison import main

    row = {"keep_ratio": 1.0, "recycle": False, "mean_iou": 0.4, "mean_box_iou": 0.1, "iou50": 0.3}
    for name, rows in (("a", [{**row, "decoder_flops": 10}, {**row, "keep_ratio": 0.25, "decoder_flops": 6}]),):
        run = tmp_path / name
        run.mkdir()
        (run / "eval_report.json").write_text(json.dumps({"connector": "mlp2x_gelu", "sparse": rows, "tasks": {}}))
        (run / "_SUCCESS").write_text("")
    assert main([str(tmp_path / "a"), "--out", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [(r["connector"], r["keep_ratio"], r["decoder_flops"]) for r in written] == [
        ("mlp2x_gelu", 1.0, 10),
        ("mlp2x_gelu", 0.25, 6),
    ]
    (tmp_path / "b").mkdir()
    assert main([str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    assert "not a finished" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["perceiver", "qformer", "mlp2x_gelu"])
def test_media_positions_make_the_patch_order_matter_and_off_is_the_reference_design(kind):
    torch.manual_seed(0)
    x = torch.randn(2, N, C)
    order = torch.randperm(N)
    for positions in (True, False):
        net = make_connector(kind, C, D, AdapterConfig(n_queries=NQ, heads=4, depth=2, media_positions=positions))
        out, shuffled = net(x), net(x[:, order])
        if kind == "mlp2x_gelu":  # one token per patch: compare each patch's token wherever it went
            shuffled = shuffled[:, torch.argsort(order)]
        # without positions the perceiver and the Q-Former see a set of patches, and the MLP each patch alone
        assert torch.allclose(out, shuffled, atol=1e-5) != positions, (kind, positions)


def test_init_from_a_checkpoint_with_other_media_positions_is_refused(tmp_path):
    from curate.commands.train.run_dir import init_weights
    from curate.core.errors import ConfigError

    tok = ByteTokenizer()
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32),
        adapter=AdapterConfig(n_queries=16, heads=2),
        connector="perceiver",
    )
    model = VLM(cfg)
    path = tmp_path / "old.pt"
    # a checkpoint written before the setting existed: its adapter config has no media_positions
    old = {"model": model.state_dict(), "config": {"model": {"connector": "perceiver", "adapter": {"n_queries": 16}}}}
    torch.save(old, path)
    with pytest.raises(ConfigError, match="media_positions=False"):
        init_weights(str(path), model)
    old["config"]["model"]["adapter"]["media_positions"] = True
    torch.save(old, path)
    init_weights(str(path), model)  # the same setting loads
