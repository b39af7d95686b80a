"""Reference model units (issue 6, AC 1): adapter shape, fixed positions, image embeddings in the span, labels,
and attention blocked between packed samples."""

from __future__ import annotations

import pytest
import torch

from curate.train.model import VLM, AdapterConfig, CrossAttnAdapter, DecoderConfig, VLMConfig, attention_mask
from curate.train.tokenizer import IGNORE, ByteTokenizer

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
    adapter = CrossAttnAdapter(kv_dim=128, kv_grid=8, out_dim=96, cfg=AdapterConfig(n_queries=64, heads=4))
    assert adapter(torch.randn(3, 64, 128)).shape == (3, 64, 96)
    with pytest.raises(ValueError, match="square"):
        CrossAttnAdapter(kv_dim=8, kv_grid=2, out_dim=8, cfg=AdapterConfig(n_queries=10, heads=2))


def test_position_encodings_are_fixed_buffers_not_parameters():
    adapter = CrossAttnAdapter(kv_dim=32, kv_grid=4, out_dim=32, cfg=AdapterConfig(n_queries=16, heads=4))
    assert {"pos_q", "pos_k"} <= {n for n, _ in adapter.named_buffers()}
    assert not {"pos_q", "pos_k"} & {n for n, _ in adapter.named_parameters()}
    before = (adapter.pos_q.clone(), adapter.pos_k.clone())
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=0.1)
    adapter(torch.randn(2, 16, 32)).pow(2).mean().backward()
    optimizer.step()
    assert torch.equal(adapter.pos_q, before[0]) and torch.equal(adapter.pos_k, before[1])
    assert not adapter.pos_q.requires_grad


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
    a = TOK.encode(" first sample<|endoftext|>", N_Q)[0]
    b = TOK.encode(" second one<|endoftext|>", N_Q)[0]
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


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=TOK.vocab_size, n_layer=2, n_head=4, n_embd=64),
        adapter=AdapterConfig(n_queries=N_Q, heads=4),
    )
    vlm = VLM(cfg)
    enc = TOK.encode_sample("<img>a.jpg</img>Generate the caption in English:", " a red cat<|endoftext|>", N_Q)
    ids, labels = torch.tensor([enc.input_ids] * 2), torch.tensor([enc.labels] * 2)
    images = torch.randn(2, 3, vlm.vision.image_size, vlm.vision.image_size)
    slots = torch.tensor([[0, enc.slots[0]], [1, enc.slots[0]]])
    segments, positions = torch.zeros_like(ids), torch.arange(ids.shape[1]).expand_as(ids)
    optimizer = torch.optim.AdamW(vlm.parameters(), lr=3e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05)
    losses = []
    for _ in range(8):
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
