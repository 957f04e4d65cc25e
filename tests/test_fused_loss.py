"""The fused LM-head cross-entropy (madbench/training/fused_loss.py) is transformers' loss, and trains alike.

    .venv/bin/python -m pytest -q tests/test_fused_loss.py

Tolerances: in fp32 the two paths differ by summation order only (rel 1e-5 on the loss and on every LoRA
gradient); under bf16 autocast both cast the same logits and gradients to bf16, and the softmax's rounding
differs, so rel 1e-2 on gradients (bf16 has 8 bits of mantissa) and 1e-3 on the fp32 loss.
"""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch


@pytest.fixture(scope="module")
def tiny(madbench_cache):
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model
    from madbench.training.trainer import make_peft_model, pack

    cfg = build_config(PRESETS.get("smoke")())
    split = load_split(cfg)
    tokenizer, base = load_base(resolve_model(cfg, split), cfg)
    model = make_peft_model(base, cfg, 0, None)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B = 0 would leave the LoRA A gradients zero
            torch.nn.init.normal_(p, std=0.05)
    ids, labels = pack(tokenizer, [d.text for d in split.pool[:9]], 64)  # a padded last block: -100 labels
    assert (labels == -100).any()
    return cfg, tokenizer, base, model, ids, labels


def loss_and_grads(model, ids, labels, fused: bool, autocast: bool):
    from madbench.training.fused_loss import causal_lm_loss

    model.zero_grad()
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with ctx:
        loss = causal_lm_loss(model, ids, labels) if fused else model(input_ids=ids, labels=labels).loss
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_loss_and_lora_gradients_equal_transformers(tiny, autocast):
    from madbench.training.fused_loss import fused_loss_applies

    _, _, _, model, ids, labels = tiny
    assert fused_loss_applies(model)
    ref_loss, ref = loss_and_grads(model, ids, labels, False, autocast)
    loss, got = loss_and_grads(model, ids, labels, True, autocast)
    rel = 1e-2 if autocast else 1e-5
    assert loss == pytest.approx(ref_loss, rel=1e-3 if autocast else 1e-6)
    worst = max(float((got[n] - ref[n]).norm() / ref[n].norm()) for n in ref)
    print(f"loss {loss:.6f} vs {ref_loss:.6f}; worst relative gradient difference {worst:.2e} over {len(ref)} tensors")
    assert worst < rel
    assert all(float(ref[n].norm()) > 0 for n in ref)


def test_a_wrong_target_fails_the_comparison(tiny):
    """The comparison can fail: the same fused loss scoring targets shifted by one is far from transformers'."""
    _, _, _, model, ids, labels = tiny
    ref_loss, _ = loss_and_grads(model, ids, labels, False, False)
    shifted = torch.roll(labels, 1, dims=1)
    shifted[:, 0] = -100
    loss, _ = loss_and_grads(model, ids, shifted, True, False)
    assert abs(loss - ref_loss) > 0.1


def test_full_finetuning_and_switch_fall_back_to_the_models_loss(tiny, monkeypatch):
    from madbench.training.fused_loss import fused_loss_applies

    _, _, base, model, _, _ = tiny
    full = copy.deepcopy(base)
    for p in full.parameters():
        p.requires_grad_(True)
    assert not fused_loss_applies(full)  # the head trains: its weight gradient is not computed here
    monkeypatch.setenv("MADBENCH_FUSED_CE", "0")
    assert not fused_loss_applies(model)


def test_training_with_the_fused_loss_ends_where_transformers_loss_does(tiny, monkeypatch):
    """Two real LoRA trainings (train_lora, same seed and data), one per loss: the same losses step by step and
    the same adapter weights within fp32 rounding amplified by a few AdamW steps."""
    from madbench.config.run_config import build_config
    from madbench.training.trainer import make_peft_model, train_lora

    cfg, tokenizer, base, _, _, _ = tiny
    cfg = build_config(cfg.to_dict(), overrides=["train.mixed_precision=no", "train.epochs=1"])
    from madbench.data.corpus import load_split

    texts = [d.text for d in load_split(cfg).pool[:24]]
    runs = {}
    for switch in ("1", "0"):
        monkeypatch.setenv("MADBENCH_FUSED_CE", switch)
        result = train_lora(make_peft_model(base, cfg, 0, None), tokenizer, texts, cfg, 0)
        runs[switch] = (result.stats, {n: p.detach().clone() for n, p in result.model.named_parameters() if p.requires_grad})
    (fused, w_fused), (plain, w_plain) = runs["1"], runs["0"]
    assert fused.train_steps == plain.train_steps >= 2 and fused.train_tokens == plain.train_tokens
    assert fused.train_loss_first == pytest.approx(plain.train_loss_first, rel=1e-5)
    assert fused.train_loss_last == pytest.approx(plain.train_loss_last, rel=1e-4)
    worst = max(float((w_fused[n] - w_plain[n]).norm() / w_plain[n].norm()) for n in w_plain)
    print(f"{fused.train_steps} steps; worst relative adapter difference {worst:.2e}")
    assert worst < 1e-3
