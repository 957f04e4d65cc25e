"""The causal-LM loss with the LM head and cross-entropy fused, chunked, and differentiated in the forward pass.

    madbench bench                          # LoRA training tokens/s with it (the default)
    MADBENCH_FUSED_CE=0 madbench bench      # with transformers' own loss, for comparison

transformers' loss materialises the logits of every position ([batch x seq x vocab]; for
SmolLM2 at 8 x 128 tokens that is 190 MB in fp32), takes a full-vocabulary log-softmax,
and autograd later runs its backward over the same block again (PyTorch's CPU kernel for
that backward was 7% of a LoRA step on its own). When the LM head is frozen (LoRA), the
gradient that reaches the last hidden state is all the backward pass needs from the head, and
it is known in the forward pass already: ``(softmax(logits) - onehot(target)) / n @ W``.
:class:`LinearCrossEntropy` computes it there, a chunk of rows at a time (Liger Kernel's
fused linear cross-entropy, on the CPU), so no full logits block is ever kept, and only the
positions that have a target are scored at all (not each row's last position, not padding).
The numbers are the same computation as ``ForCausalLMLoss``: bf16 (or the model's dtype)
logits from the head, an fp32 log-sum-exp, the mean over target tokens, the gradient cast to
the head's dtype before the matmul with its weight.

Used by :func:`madbench.training.trainer.train_lora` whenever :func:`fused_loss_applies`
holds (a frozen, bias-free linear head on a model whose logits are just ``head(hidden)``);
otherwise the model's own loss runs.
"""

from __future__ import annotations

import os

import torch

CHUNK_ROWS = 256  # positions per head matmul: bounds the fp32 block at 256 x vocab (50 MB for SmolLM2)
PLAIN_HEAD_MODELS = ("llama", "mistral", "qwen2", "qwen3")  # causal LMs whose logits are lm_head(hidden), nothing else


class LinearCrossEntropy(torch.autograd.Function):
    """mean over rows of -log softmax(hidden @ weight.T)[target]; the hidden states' gradient is computed here."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = CHUNK_ROWS):
        n = targets.numel()
        grad_hidden = torch.empty_like(hidden)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk):
            h, t = hidden[start:start + chunk], targets[start:start + chunk]
            logits = torch.nn.functional.linear(h, weight).float()
            target_logit = logits.gather(1, t[:, None])[:, 0]
            peak = logits.amax(dim=-1, keepdim=True)
            probs = logits.sub_(peak).exp_()  # in place: the block is read and written as few times as possible
            norm = probs.sum(dim=-1, keepdim=True)
            total += (peak[:, 0] + norm[:, 0].log() - target_logit).sum()  # log-sum-exp minus the target's logit
            probs.div_(norm * n)  # softmax / n
            probs[torch.arange(len(t), device=t.device), t] -= 1.0 / n
            grad_hidden[start:start + chunk] = torch.nn.functional.linear(probs.to(weight.dtype), weight.t())
        ctx.save_for_backward(grad_hidden)
        return total / n

    @staticmethod
    def backward(ctx, grad_loss):
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_loss.to(grad_hidden.dtype), None, None, None


def _parts(model):
    """(decoder, head) of a causal LM (plain or peft-wrapped)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    return base, decoder, head


def fused_loss_applies(model) -> bool:
    """Whether :func:`causal_lm_loss` computes what ``model(input_ids, labels=...).loss`` does: a plain-head
    model type, a frozen bias-free ``nn.Linear`` head (LoRA does not adapt it), and not ``MADBENCH_FUSED_CE=0``."""
    if os.environ.get("MADBENCH_FUSED_CE", "1") == "0":
        return False
    base, decoder, head = _parts(model)
    return (getattr(base.config, "model_type", None) in PLAIN_HEAD_MODELS and decoder is not None and decoder is not base
            and type(head) is torch.nn.Linear and head.bias is None and not head.weight.requires_grad
            and not getattr(base.config, "final_logit_softcapping", None))


def causal_lm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``labels`` (-100 = ignored), as the model's own loss, fused (see above).
    Under autocast the head runs in the autocast dtype, as ``nn.Linear`` would."""
    _, decoder, head = _parts(model)
    hidden = decoder(input_ids=input_ids).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    if not bool(keep.any()):
        return hidden.sum() * float("nan")  # what the mean over no targets is in transformers' loss
    rows = hidden[:, :-1][keep]
    weight = head.weight
    device = input_ids.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        rows, weight = rows.to(dtype), weight.to(dtype)
    return LinearCrossEntropy.apply(rows, weight, targets[keep])
