"""A Hugging Face causal LM from a local folder as the decoder: a random-init tiny Llama saved to disk (no hub),
trained a few steps, with packed samples still blocked from each other through the 4D mask."""

from __future__ import annotations

import pytest
import torch

from curate.format.tokenizer import ByteTokenizer
from curate.train.connectors import AdapterConfig
from curate.train.model import VLM, DecoderConfig, VLMConfig

TOK = ByteTokenizer()
N_Q = 4


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=TOK.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("hf") / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(llama_dir):
    torch.manual_seed(0)
    cfg = VLMConfig(
        decoder=DecoderConfig(vocab_size=TOK.vocab_size, hf_path=str(llama_dir)),
        adapter=AdapterConfig(n_queries=N_Q, heads=4),
    )
    return VLM(cfg)


def test_hf_decoder_keeps_packed_samples_apart(model):
    model.eval()
    a = TOK.encode(" first sample<|endoftext|>", N_Q).input_ids
    b = TOK.encode(" second one<|endoftext|>", N_Q).input_ids
    segments = torch.tensor([[0] * len(a) + [1] * len(b)])
    positions = torch.tensor([list(range(len(a))) + list(range(len(b)))])
    with torch.no_grad():
        together, _ = model(torch.tensor([a + b]), segments, positions)
        alone, _ = model(torch.tensor([b]), torch.zeros(1, len(b), dtype=torch.long), torch.arange(len(b))[None])
    assert model.decoder.n_embd == 64
    assert torch.allclose(together[0, len(a) :], alone[0], atol=1e-4)


def test_hf_decoder_trains_with_images_in_the_span(model):
    model.train()
    enc = TOK.encode_sample("<img>a.jpg</img>Generate the caption in English:", " a red cat<|endoftext|>", N_Q)
    ids, labels = torch.tensor([enc.input_ids] * 2), torch.tensor([enc.labels] * 2)
    images = torch.randn(2, 3, model.vision.image_size, model.vision.image_size)
    slots = torch.tensor([[0, enc.slots[0]], [1, enc.slots[0]]])
    segments, positions = torch.zeros_like(ids), torch.arange(ids.shape[1]).expand_as(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        _, loss = model(ids, segments, positions, images=images, image_slots=slots, labels=labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.adapter.query.grad is not None  # the image path reaches the HF model


def test_missing_hf_folder_is_a_clear_config_error(tmp_path):
    with pytest.raises(ValueError, match="not a local Hugging Face model folder"):
        VLM(VLMConfig(decoder=DecoderConfig(vocab_size=10, hf_path=str(tmp_path))))
