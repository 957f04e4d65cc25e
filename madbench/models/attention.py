"""Grouped-query attention as two batched matmuls: madbench's attention on the CPU.

    madbench bench                      # sampling / training / evaluation tokens/s with it
    MADBENCH_ATTENTION=sdpa madbench bench   # the same with transformers' SDPA, for comparison

PyTorch's CPU kernels for ``scaled_dot_product_attention`` are slow at madbench's
shapes (short sequences, few heads): on SmolLM2-135M a decode step's attention
took a fifth of sampling time, and the flash kernel's backward a fifth of LoRA
training time. :func:`matmul_attention` computes the same thing as transformers'
``eager`` attention (scores in the model's dtype, softmax in fp32) without
repeating the key/value heads: the query heads that share a key/value head are
folded into the query-length dimension, so one ``matmul`` serves the whole group.

It is registered with transformers' ``AttentionInterface`` (with SDPA's boolean
masks) and :func:`use_fast_attention` switches a loaded model to it on the CPU
when the model supports attention backends. ``MADBENCH_ATTENTION=sdpa`` (or any
registered name) keeps or picks another implementation.
"""

from __future__ import annotations

import os

import torch

NAME = "madbench_matmul"


def matmul_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     is_causal=None, **kwargs):
    """Attention for (batch, heads, q_len, dim) query and (batch, kv_heads, kv_len, dim) key/value.

    ``attention_mask`` is SDPA's: boolean (True = attend) or additive float, shape
    (batch, 1, q_len, kv_len), or None for plain causal (or full) attention.
    Returns (batch, q_len, heads, dim), like every transformers attention function.
    """
    batch, heads, q_len, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scaling = dim ** -0.5 if scaling is None else scaling
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if attention_mask is None and causal and q_len > 1 and kv_len > q_len:
        key, value, kv_len = key[:, :, :q_len], value[:, :, :q_len], q_len  # prefill of an empty static cache
    # heads h = k * group + g share key/value head k: fold g into the query dimension
    scores = torch.matmul(query.reshape(batch, kv_heads, group * q_len, dim), key.transpose(-1, -2))
    scores = scores.view(batch, kv_heads, group, q_len, kv_len).float() * scaling
    if attention_mask is not None:
        mask = attention_mask[:, :, None, :, -kv_len:] if attention_mask.dim() == 4 else attention_mask
        if mask.dtype == torch.bool:  # finfo.min, not -inf: a fully masked (padding) row stays finite
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask.float()
    elif causal and q_len > 1:
        keep = torch.ones(q_len, kv_len, dtype=torch.bool, device=scores.device).tril(kv_len - q_len)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs.view(batch, kv_heads, group * q_len, kv_len), value)
    return out.view(batch, heads, q_len, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, matmul_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def wanted_implementation(device_type: str, current=None):
    """``MADBENCH_ATTENTION`` if set, else madbench's attention on the CPU and ``current`` elsewhere."""
    return os.environ.get("MADBENCH_ATTENTION") or (NAME if device_type == "cpu" else current)


def use_fast_attention(model) -> str:
    """Switch ``model`` to madbench's attention where that is faster (CPU); return the implementation in use."""
    current = getattr(model.config, "_attn_implementation", None)
    wanted = wanted_implementation(model.device.type, current)
    if wanted == NAME:
        register()
    if wanted and wanted != current and getattr(model, "_supports_attention_backend", False):
        model.set_attn_implementation(wanted)
    return model.config._attn_implementation
