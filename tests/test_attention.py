"""madbench's matmul attention against transformers' SDPA on a real (tiny, grouped-query) Llama.

    .venv/bin/python -m pytest -q tests/test_attention.py
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, StaticCache

from madbench.models.attention import NAME, register, use_fast_attention


@pytest.fixture(scope="module")
def model():
    register()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=48, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                      intermediate_size=96, max_position_embeddings=128, pad_token_id=0)
    return LlamaForCausalLM(cfg).float().eval()


def _both(model, **inputs):
    out = {}
    for impl in ("sdpa", NAME):
        model.set_attn_implementation(impl)
        out[impl] = model(**inputs)
    return out["sdpa"], out[NAME]


def test_left_padded_batch_matches_sdpa(model):
    ids = torch.randint(1, 97, (3, 12))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding, as madbench's sampler and lm-eval batches have
    mask[1, :1] = 0
    with torch.no_grad():
        ref, ours = _both(model, input_ids=ids, attention_mask=mask)
    real = mask.bool()
    assert torch.isfinite(ours.logits).all(), "a fully masked padding row must stay finite"
    torch.testing.assert_close(ours.logits[real], ref.logits[real], atol=1e-4, rtol=1e-4)


def test_causal_training_loss_and_gradients_match_sdpa(model):
    ids = torch.randint(1, 97, (2, 16))
    grads = []
    for impl in ("sdpa", NAME):
        model.set_attn_implementation(impl)
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss  # no attention mask: the causal path
        loss.backward()
        grads.append((loss.detach(), model.model.layers[0].self_attn.k_proj.weight.grad.clone()))
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[1][1], grads[0][1], atol=1e-5, rtol=1e-4)
    model.zero_grad()


def test_static_cache_decode_matches_sdpa(model):
    ids = torch.randint(1, 97, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    steps = []
    for impl in ("sdpa", NAME):
        model.set_attn_implementation(impl)
        cache = StaticCache(config=model.config, max_cache_len=10)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            first = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache).logits[:, -1]
            nxt = first.argmax(-1, keepdim=True)
            mask2 = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], 1)
            second = model(input_ids=nxt, attention_mask=mask2, position_ids=pos[:, -1:] + 1,
                           cache=cache).logits[:, -1]
        steps.append((first, second))
    for ours, ref in zip(steps[1], steps[0]):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_cpu_models_switch_and_the_environment_overrides(model, monkeypatch):
    model.set_attn_implementation("sdpa")
    assert use_fast_attention(model) == NAME
    monkeypatch.setenv("MADBENCH_ATTENTION", "sdpa")
    assert use_fast_attention(model) == "sdpa"
