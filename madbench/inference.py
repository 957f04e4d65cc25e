"""The weights a model computes with when it only runs forward: sampling and evaluation.

    madbench bench          # sampling / evaluation tokens/s with these weights vs plain transformers

:func:`inference_weights` is a context manager for no-grad forward passes:

- LoRA deltas are folded into fresh copies of the base weights (:func:`merged_lora`),
  so a forward pass costs what the base model's does, with no adapter matmuls;
- on a CPU with bf16 support, every bf16 ``nn.Linear`` weight is reordered once into oneDNN's blocked
  layout and the layer calls ``mkldnn._linear_pointwise`` (:func:`packed_linears`),
  the path inductor takes for frozen CPU models. A plain ``F.linear`` repacks its
  weight on every call; at a decode batch of 64 rows this cut SmolLM2-135M's
  linear-layer time per step by about a fifth (cold weights, 2-core Zen 5).

Everything is restored on exit; the base weights are never written to, so the
frozen base that generations share stays intact. ``MADBENCH_PACKED_LINEARS=0``
turns packing off.
"""

from __future__ import annotations

import contextlib
import os

import torch


@contextlib.contextmanager
def inference_weights(model):
    """Merged LoRA and (on the CPU) prepacked linear weights for the duration of the block."""
    with merged_lora(model), packed_linears(model):
        yield model


def _packing_available(model) -> bool:
    return (os.environ.get("MADBENCH_PACKED_LINEARS", "1") != "0" and torch.backends.mkldnn.is_available()
            and next(model.parameters()).device.type == "cpu" and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _packed_forward(packed, bias):
    def forward(x):
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return forward


@contextlib.contextmanager
def packed_linears(model, batch_hint: int = 64):
    """Run every ``nn.Linear`` of ``model`` with a oneDNN-prepacked copy of its weight (CPU, no grad only)."""
    patched = []
    if _packing_available(model):
        for module in model.modules():
            if type(module) is not torch.nn.Linear or module.weight.dtype != torch.bfloat16:
                continue
            packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), batch_hint)
            bias = module.bias.detach() if module.bias is not None else None
            patched.append(module)
            module.forward = _packed_forward(packed, bias)
    try:
        yield model
    finally:
        for module in patched:
            del module.forward  # back to the class's forward


@contextlib.contextmanager
def merged_lora(model):
    """Fold active LoRA deltas into fresh copies of the base weights (restored on exit).

    The base weights themselves are never written to: each LoRA layer's ``weight``
    attribute is pointed at ``W + scale * B @ A`` (computed in fp32, stored in W's
    dtype) and the adapter is bypassed; on exit the original Parameter objects come
    back. A model without LoRA layers passes through unchanged.
    """
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover - peft is a dependency
        yield model
        return
    swapped = []
    try:
        for module in model.modules():
            if not isinstance(module, LoraLayer) or getattr(module, "merged", False):
                continue
            base = module.get_base_layer()
            active = [a for a in module.active_adapters if a in getattr(module, "lora_A", {})]
            if not active or not isinstance(base, torch.nn.Linear) or getattr(module, "fan_in_fan_out", False):
                continue
            weight = base.weight
            delta = sum(module.lora_B[a].weight.float() @ module.lora_A[a].weight.float() * module.scaling[a] for a in active)
            swapped.append((module, base, weight, module.disable_adapters))
            base.weight = torch.nn.Parameter((weight.float() + delta).to(weight.dtype), requires_grad=False)
            module._disable_adapters = True
        yield model
    finally:
        for module, base, weight, disabled in swapped:
            base.weight = weight
            module._disable_adapters = disabled
