"""A Llama decoder's no-grad forward as plain tensor code: the step of madbench's sampler on the CPU.

    madbench bench                          # sampling tokens/s with it (the default on the CPU)
    MADBENCH_DECODE=hf madbench bench       # through transformers' modules, for comparison

A decode step of a 30-layer model is hundreds of small operator calls, and on a 2-core CPU
transformers' per-layer machinery around them (module calls and hooks, the mask built per
step, the static cache's bookkeeping, rotary embeddings recomputed every step, three q/k/v
and two gate/up matmuls) costs as much as a good share of the matmuls themselves.
:class:`LlamaDecoder` reads a model's weights once per sampling call (LoRA already folded in by
:func:`madbench.models.inference.merged_lora`), concatenates q/k/v and gate/up into one matrix
each, tabulates the rotary cos/sin for every position, and runs a step as a few tensor ops
per layer over a preallocated KV cache. The arithmetic is transformers' Llama: RMSNorm in
fp32 cast back to the model's dtype before its weight, rotary in the model's dtype, attention
as :func:`madbench.models.attention.matmul_attention` (scores in the model's dtype, softmax in
fp32), logits of the last position only. ``tests/test_sampling.py`` checks its logits against
transformers' forward on the tiny model, step by step.

:func:`llama_decoder` gives one only where that arithmetic is the model's (a Llama without
biases, SiLU, a static rotary table, no active adapter left unmerged) and on the CPU;
otherwise sampling runs through the model's own forward.
"""

from __future__ import annotations

import os
from typing import Optional

import torch

from madbench.models.attention import matmul_attention

STATIC_ROPE = ("default", "linear", "llama3", "yarn")  # rope types whose cos/sin depend on the position alone


def _weight(module) -> torch.Tensor:
    return (module.get_base_layer() if hasattr(module, "get_base_layer") else module).weight


def _unmerged_adapter(model) -> bool:
    """An adapter that still adds its own matmul (merged_lora left it: not a plain Linear, fan_in_fan_out)."""
    for module in model.modules():
        if hasattr(module, "lora_A") and not getattr(module, "merged", False) and not getattr(module, "disable_adapters", True):
            if any(a in module.lora_A for a in getattr(module, "active_adapters", [])):
                return True
    return False


def llama_decoder(model, max_len: int) -> Optional["LlamaDecoder"]:
    """A :class:`LlamaDecoder` for ``model`` (inside ``merged_lora``) with a rotary table of ``max_len``
    positions, or None where sampling should run through the model's own forward."""
    if os.environ.get("MADBENCH_DECODE", "fast") == "hf":
        return None
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    c = base.config
    rope = (getattr(c, "rope_parameters", None) or {}).get("rope_type", "default")
    if (getattr(c, "model_type", None) != "llama" or getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False)
            or getattr(c, "hidden_act", None) != "silu" or rope not in STATIC_ROPE or getattr(c, "pretraining_tp", 1) != 1
            or base.device.type != "cpu" or type(base.lm_head) is not torch.nn.Linear or base.lm_head.bias is not None
            or type(base.model.embed_tokens) is not torch.nn.Embedding or _unmerged_adapter(model)):
        return None
    return LlamaDecoder(base, max_len)


class LlamaDecoder:
    """Weights of a ``LlamaForCausalLM`` laid out for decoding, and its forward over a KV cache."""

    def __init__(self, base, max_len: int):
        core, c = base.model, base.config
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps, self.scaling = c.rms_norm_eps, self.head_dim ** -0.5
        self.embed, self.norm, self.head = core.embed_tokens.weight, core.norm.weight, base.lm_head.weight
        self.dtype = self.embed.dtype
        self.layers = []
        for layer in core.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append((layer.input_layernorm.weight,
                                torch.cat([_weight(attn.q_proj), _weight(attn.k_proj), _weight(attn.v_proj)]),
                                _weight(attn.o_proj), layer.post_attention_layernorm.weight,
                                torch.cat([_weight(mlp.gate_proj), _weight(mlp.up_proj)]), _weight(mlp.down_proj)))
        self.inter = _weight(core.layers[0].mlp.gate_proj).shape[0]
        rotary = core.rotary_emb  # transformers' own arithmetic: fp32 angles, cos/sin scaled, cast to the model dtype
        freqs = torch.arange(max_len, device=self.embed.device)[:, None].float() * rotary.inv_freq.float()[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * rotary.attention_scaling).to(self.dtype)
        self.sin = (emb.sin() * rotary.attention_scaling).to(self.dtype)

    def new_cache(self, rows: int, length: int):
        shape = (len(self.layers), rows, self.kv_heads, length, self.head_dim)
        return torch.zeros(shape, dtype=self.dtype, device=self.embed.device), torch.zeros(shape, dtype=self.dtype, device=self.embed.device)

    def _rms(self, x, weight):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(x.dtype)

    @staticmethod
    def _rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, cache, start: int) -> torch.Tensor:
        """fp32 logits of each row's last position. ``ids``/``positions`` [rows, T] are the new tokens, written
        into cache slots ``start .. start+T-1``; ``mask`` [rows, >= start+T] marks the slots holding real tokens."""
        rows, length = ids.shape
        end = start + length
        h_dim, kv_dim = self.heads * self.head_dim, self.kv_heads * self.head_dim
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [rows, 1, T, head_dim]
        allowed = mask[:, None, None, :end].bool()  # [rows, 1, 1, S]: SDPA's boolean mask, broadcast over T
        if length > 1:
            allowed = allowed & torch.ones(length, end, dtype=torch.bool, device=ids.device).tril(start)
        keys_cache, values_cache = cache
        x = torch.nn.functional.embedding(ids, self.embed)
        for i, (norm1, qkv_w, o_w, norm2, gate_up_w, down_w) in enumerate(self.layers):
            qkv = torch.nn.functional.linear(self._rms(x, norm1), qkv_w)
            q = qkv[..., :h_dim].view(rows, length, self.heads, self.head_dim).transpose(1, 2)
            k = qkv[..., h_dim:h_dim + kv_dim].view(rows, length, self.kv_heads, self.head_dim).transpose(1, 2)
            keys_cache[i, :, :, start:end] = self._rotate(k, cos, sin)
            values_cache[i, :, :, start:end] = qkv[..., h_dim + kv_dim:].view(rows, length, self.kv_heads, self.head_dim).transpose(1, 2)
            out, _ = matmul_attention(None, self._rotate(q, cos, sin), keys_cache[i, :, :, :end],
                                      values_cache[i, :, :, :end], allowed, scaling=self.scaling)
            out = out.reshape(rows, length, h_dim)
            x = x + torch.nn.functional.linear(out, o_w)
            gate, up = torch.nn.functional.linear(self._rms(x, norm2), gate_up_w).split(self.inter, dim=-1)
            x = x + torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, down_w)
        return torch.nn.functional.linear(self._rms(x[:, -1], self.norm), self.head).float()
