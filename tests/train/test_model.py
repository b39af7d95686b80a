"""Reference model units (issue 6, AC 1): adapter shape, fixed positions, image embeddings in the span, labels,
and attention blocked between packed samples."""

from __future__ import annotations

import pytest
import torch

from curate.format.tokenizer import IGNORE, ByteTokenizer
from curate.train.connectors import AdapterConfig, CrossAttnAdapter, sincos_2d
from curate.train.model import VLM, DecoderConfig, VLMConfig, attention_mask

TOK = ByteTokenizer()
N_Q = 16


@pytest.fixture(scope="module")
def model() -> VLM:
    torch.manual_seed(0)
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=TOK.vocab_size, n_layer=2, n_head=4, n_embd=64),
        adapter=AdapterConfig(n_queries=N_Q, heads=4),
    )
    return VLM(cfg).eval()


def test_adapter_output_shape_is_batch_queries_width():
    adapter = CrossAttnAdapter(kv_dim=128, out_dim=96, cfg=AdapterConfig(n_queries=64, heads=4))
    assert adapter(torch.randn(3, 64, 128)).shape == (3, 64, 96)
    assert adapter(torch.randn(2, 256, 128)).shape == (2, 64, 96)  # a 448 px ViT grid: still N queries out
    with pytest.raises(ValueError, match="square"):
        CrossAttnAdapter(kv_dim=8, out_dim=8, cfg=AdapterConfig(n_queries=10, heads=2))


def test_position_encodings_are_fixed_buffers_not_parameters():
    adapter = CrossAttnAdapter(kv_dim=32, out_dim=32, cfg=AdapterConfig(n_queries=16, heads=4))
    assert "pos" in {n for n, _ in adapter.named_buffers()}
    assert "pos" not in {n for n, _ in adapter.named_parameters()}
    before = adapter.pos.clone()
    assert torch.equal(before, sincos_2d(32, 4))
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=0.1)
    adapter(torch.randn(2, 16, 32)).pow(2).mean().backward()
    optimizer.step()
    assert torch.equal(adapter.pos, before) and not adapter.pos.requires_grad
    # keys on the query grid get the query table itself; on a finer grid, its bicubic resize (§7 get_abs_pos)
    assert torch.equal(adapter.key_positions(16), before)
    finer = adapter.key_positions(64)
    assert finer.shape == (64, 32) and not torch.equal(finer[:16], before)


def test_positions_go_on_queries_and_keys_but_not_values():
    """Shifting the key positions changes the output; the values carry no positions (the output is a
    position-free function of the tokens once the attention weights are fixed)."""
    torch.manual_seed(0)
    adapter = CrossAttnAdapter(kv_dim=16, out_dim=16, cfg=AdapterConfig(n_queries=4, heads=2)).eval()
    tokens = torch.randn(1, 4, 16)
    base = adapter(tokens)
    adapter.pos.add_(1.0)
    assert not torch.allclose(adapter(tokens), base)
    x = adapter.ln_kv(adapter.kv_proj(tokens))
    _, _, v_weight = adapter.attn.in_proj_weight.chunk(3)
    values = x @ v_weight.T + adapter.attn.in_proj_bias.chunk(3)[2]
    q = (adapter.ln_q(adapter.query) + adapter.pos)[None]
    _, weights = adapter.attn(q, x + adapter.key_positions(4), x, need_weights=True, average_attn_weights=False)
    heads = torch.cat([weights[0, h] @ values[0, :, h * 8 : (h + 1) * 8] for h in range(2)], dim=-1)
    expected = adapter.ln_post(adapter.attn.out_proj(heads)) @ adapter.proj
    assert torch.allclose(adapter(tokens)[0], expected, atol=1e-5)


def test_vision_tower_runs_at_any_square_resolution(model):
    """Stage 1 trains at 224 px, stage 2 at 448: the learned position grid is resized to the input (§2.2)."""
    patch = model.vision.patch
    for side in (model.vision.image_size, 2 * model.vision.image_size):
        tokens = model.vision(torch.randn(1, 3, side, side))
        assert tokens.shape == (1, (side // patch) ** 2, model.vision.width)


def test_labels_mask_prefix_and_image_slots_and_keep_every_target_token():
    prefix, target = "<img>coco/a.jpg</img>Generate the caption in English:", " a cat<|endoftext|>"
    enc = TOK.encode_sample(prefix, target, N_Q)
    n_prefix = 1 + N_Q + 1 + len(b"Generate the caption in English:")
    assert enc.images == ["coco/a.jpg"] and enc.slots == [1]
    assert enc.labels[:n_prefix] == [IGNORE] * n_prefix
    assert enc.labels[n_prefix:] == list(b" a cat") + [TOK.eos] == enc.input_ids[n_prefix:]
    assert TOK.decode(enc.input_ids) == "<img></img>Generate the caption in English: a cat<|endoftext|>"
    grounded = TOK.encode_sample("<img>a.jpg</img><ref>dog</ref>", "<box>(1,2),(3,4)</box><|endoftext|>", N_Q)
    n = len(grounded.input_ids) - len(grounded.labels[grounded.labels.index(TOK.ids["<box>"]) :])
    assert all(label == IGNORE for label in grounded.labels[:n])
    assert grounded.labels[n:] == grounded.input_ids[n:]  # special tokens of the target are learned too


def test_image_embeddings_land_exactly_in_the_image_span(model):
    enc = TOK.encode_sample("x<img>a.jpg</img>Generate:", " y<|endoftext|>", N_Q)
    ids = torch.tensor([enc.input_ids])
    images = torch.randn(1, 3, model.vision.image_size, model.vision.image_size)
    slots = torch.tensor([[0, enc.slots[0]]])
    with torch.no_grad():
        embeds = model.embed(ids, images, slots)
        feats = model.adapter(model.vision(images))[0]
        plain = model.decoder.wte(ids)[0]
    start = enc.slots[0]
    assert torch.allclose(embeds[0, start : start + N_Q], feats)
    outside = [i for i in range(ids.shape[1]) if not start <= i < start + N_Q]
    assert torch.equal(embeds[0, outside], plain[outside])
    assert ids[0, start - 1] == TOK.ids["<img>"] and ids[0, start + N_Q] == TOK.ids["</img>"]


def test_packed_samples_do_not_attend_to_each_other(model):
    a = TOK.encode(" first sample<|endoftext|>", N_Q).input_ids
    b = TOK.encode(" second one<|endoftext|>", N_Q).input_ids
    packed = torch.tensor([a + b])
    segments = torch.tensor([[0] * len(a) + [1] * len(b)])
    positions = torch.tensor([list(range(len(a))) + list(range(len(b)))])
    mask = attention_mask(segments)[0]
    assert not mask[len(a) :, : len(a)].any()
    assert torch.equal(mask[len(a) :, len(a) :], torch.ones(len(b), len(b), dtype=torch.bool).tril())
    with torch.no_grad():
        together, _ = model(packed, segments, positions)
        alone, _ = model(torch.tensor([b]), torch.zeros(1, len(b), dtype=torch.long), torch.arange(len(b))[None])
    assert torch.allclose(together[0, len(a) :], alone[0], atol=1e-5)


def test_packed_loss_is_the_solo_losses_and_never_predicts_across_a_boundary(model):
    """The last token of a packed sample is not trained to predict the next sample's first token (attention is
    blocked there): the packed loss is exactly the token-weighted mean of the samples' solo losses."""
    a = TOK.encode(" first sample<|endoftext|>", N_Q).input_ids
    b = TOK.encode(" second one<|endoftext|>", N_Q).input_ids
    segments = torch.tensor([[0] * len(a) + [1] * len(b)])
    positions = torch.tensor([list(range(len(a))) + list(range(len(b)))])
    with torch.no_grad():
        _, packed = model(torch.tensor([a + b]), segments, positions, labels=torch.tensor([a + b]))
        solo = []
        for ids in (a, b):
            t = torch.tensor([ids])
            _, loss = model(t, torch.zeros_like(t), torch.arange(len(ids))[None], labels=t)
            solo.append(loss * (len(ids) - 1))
    assert torch.allclose(packed, sum(solo) / (len(a) - 1 + len(b) - 1), atol=1e-5)


@pytest.mark.parametrize(("tokenizer", "steps"), [("bytes", 8), ("qwen_vl", 30)])  # 151,860 ids learn slower
def test_a_few_steps_lower_the_loss(tokenizer, steps):
    from curate.format.tokenizer import make_tokenizer

    torch.manual_seed(0)
    tok = make_tokenizer(tokenizer)  # the reference model trains with Qwen-VL's vocabulary too (issue 16)
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_embd=64),
        adapter=AdapterConfig(n_queries=N_Q, heads=4),
    )
    vlm = VLM(cfg)
    enc = tok.encode_sample("<img>a.jpg</img>Generate the caption in English:", " a red cat<|endoftext|>", N_Q)
    ids, labels = torch.tensor([enc.input_ids] * 2), torch.tensor([enc.labels] * 2)
    images = torch.randn(2, 3, vlm.vision.image_size, vlm.vision.image_size)
    slots = torch.tensor([[0, enc.slots[0]], [1, enc.slots[0]]])
    segments, positions = torch.zeros_like(ids), torch.arange(ids.shape[1]).expand_as(ids)
    optimizer = torch.optim.AdamW(vlm.parameters(), lr=3e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05)
    losses = []
    for _ in range(steps):
        _, loss = vlm(ids, segments, positions, images=images, image_slots=slots, labels=labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vlm.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_training_step_benchmark_reports_tokens_per_second():
    from curate.train.bench import run

    result = run("tiny", steps=2, warmup=1)
    assert result["tokens_per_s"] > 0 and result["tokens_per_step"] == 512
    assert result["parameters"] > 0 and result["model_tflops_per_s"] >= 0


def test_training_step_benchmark_over_shards_reports_the_data_wait(shapes_build):
    """--data feeds the trainer's loader: real token counts, and the share of step time spent waiting for data."""
    from curate.train.bench import run

    result = run("tiny", steps=2, warmup=1, data=[str(shapes_build)], workers=0)
    assert 0 < result["data_wait_share"] < 1  # workers=0 decodes in this process: the wait is real and measured
    assert 0 < result["tokens_per_step"] <= 512 and result["data"] == str(shapes_build)
    synthetic = run("tiny", steps=1, warmup=0)
    assert synthetic["data_wait_share"] == 0 and synthetic["data"] == "synthetic"
