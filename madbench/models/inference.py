"""The weights a model computes with when it only runs forward: sampling and evaluation.

    madbench bench          # sampling / evaluation tokens/s with these weights vs plain transformers

:func:`merged_lora` is the context manager that sampling, held-out perplexity and
lm-eval enter for their no-grad forward passes: it folds the LoRA deltas into fresh
copies of the base weights, so a forward pass costs what the base model's does,
with no adapter matmuls. (Prepacking the linear weights for
oneDNN was tried here too: faster on one layer in isolation, no measurable change in
``madbench bench``, so it is not done.) Everything is restored on exit; the base
weights are never written to, so the frozen base that generations share stays intact.
"""

from __future__ import annotations

import contextlib

import torch


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
            if not isinstance(module, LoraLayer) or getattr(module, "merged", False) or module.disable_adapters:
                continue  # merged by peft, or adapters off (by the user or by an enclosing merged_lora: never add twice)
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
