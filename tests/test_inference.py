"""Inference weights (merged LoRA) give the adapter model's own outputs and leave the shared base intact.

    .venv/bin/python -m pytest -q tests/test_inference.py
"""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from madbench.models.inference import merged_lora


@pytest.fixture(scope="module")
def lora_model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=101, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=128, max_position_embeddings=64)
    model = get_peft_model(LlamaForCausalLM(cfg).to(torch.bfloat16),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter: B = 0 would make merging trivially right
            torch.nn.init.normal_(p, std=0.2)
    return model.eval()


@torch.no_grad()
def test_merged_lora_matches_the_adapter_forward(lora_model):
    ids = torch.randint(0, 101, (3, 9))
    reference = lora_model(input_ids=ids).logits.float()
    base_q = lora_model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    before = base_q.clone()
    with merged_lora(lora_model):
        fast = lora_model(input_ids=ids).logits.float()
    torch.testing.assert_close(fast, reference, atol=0.1, rtol=0.05)  # bf16: merged weights round once more
    assert torch.equal(base_q, before), "the shared base weight was written to"
    assert lora_model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight is base_q
    after = lora_model(input_ids=ids).logits.float()
    torch.testing.assert_close(after, reference, atol=0, rtol=0)  # the adapters are back


@torch.no_grad()
def test_merged_lora_inside_merged_lora_adds_the_deltas_once(lora_model):
    ids = torch.randint(0, 101, (2, 7))
    with merged_lora(lora_model):
        once = lora_model(input_ids=ids).logits.float()
        with merged_lora(lora_model):
            nested = lora_model(input_ids=ids).logits.float()
    torch.testing.assert_close(nested, once, atol=0, rtol=0)
    with lora_model.disable_adapter():  # adapters switched off by the user stay off: no delta is folded in
        plain = lora_model(input_ids=ids).logits.float()
        with merged_lora(lora_model):
            torch.testing.assert_close(lora_model(input_ids=ids).logits.float(), plain, atol=0, rtol=0)
