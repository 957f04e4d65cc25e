"""Fine-tuning of one generation (a peft LoRA adapter, or every weight), driven by accelerate.

Documents are tokenised, joined with EOS and packed into ``train.seq_len`` blocks (or, with
``train.packing=per_document``, one document per row, cut or padded to ``train.seq_len``);
the last block is padded and its padding masked out of the loss (labels -100), so
every token of the mix is trained on and no padding is (with ``sampling.keep_prompt``, a
sample's real prompt is in the mix but not a loss target: ``prompt_chars``). ``train_tokens`` counts the
loss targets over all epochs. Data order and LoRA init are seeded from
(seed, generation). ``train.checkpoint=best_val`` keeps the weights of the epoch with the lowest loss on
the real validation documents (``data.val_docs``), not the last epoch's. Under ``accelerate launch`` the same code runs data-parallel.
:func:`train_lora` trains whatever requires a gradient: the LoRA weights, or the
whole model for ``train.method=full`` (see :mod:`madbench.models.weights`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

from madbench.models.base_model import bf16_supported
from madbench.models.weights import make_peft_model  # noqa: F401  (where it lived: bench, tests)
from madbench.training.packing import pack, pack_documents, target_tokens, training_rows  # noqa: F401  (training.pack: bench, tests)


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up over ``warmup_steps``, times a cosine decay over all ``total_steps`` (stepped once per batch).

    Not ``transformers.get_cosine_schedule_with_warmup``, and it stays so: that one starts at 0, warms up to the
    full rate at step ``warmup_steps`` and only then decays over ``total_steps - warmup_steps``; this one starts at
    ``1 / warmup_steps`` of the rate (step s has min(1, (s + 1) / warmup_steps)) and multiplies it by a cosine that
    runs from step 0 over all ``total_steps``. With warmup_steps=2, total_steps=8 the rates are 0.50 0.96 0.85 0.69
    0.50 0.31 0.15 0.04 here against 0 0.5 1 0.93 0.75 0.5 0.25 0.07 there (equal only without warm-up). The
    schedule is part of the frozen benchmark: every golden run and the regress reference were trained with it.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup_steps))
                                             * (0.5 * (1 + math.cos(math.pi * s / max(1, total_steps)))))


def mixed_precision(cfg) -> str:
    if cfg.train.mixed_precision == "auto":
        return "bf16" if bf16_supported() else "no"
    return cfg.train.mixed_precision


def weighted_lm_loss(model, input_ids, labels, token_weights):
    """Causal-LM loss with per-token weights from ``token_weights(logits, targets) -> (weights | None, counts)``.

    ``logits`` [B, T-1, V] (float, detached) predict ``targets`` [B, T-1] (labels shifted; -100 = ignored).
    The loss is the weighted mean of the token NLLs, sum(w * nll) / sum(w), so a 0/1 mask averages over the
    tokens it keeps (0 when it keeps none); a ``token_weights`` with ``over_all_tokens`` set divides by every
    target token instead (ForTIFAI's ``loss.mean()``: a masked token counts as a zero). Used only when a
    mitigation acts on the loss.
    """
    logits = model(input_ids=input_ids).logits[:, :-1].float()
    targets = labels[:, 1:]
    valid = targets != -100
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                            ignore_index=-100, reduction="none").view_as(targets)
    with torch.no_grad():
        weights, counts = token_weights(logits.detach(), targets)
    weights = valid.float() if weights is None else weights.float() * valid
    denominator = valid.sum() if getattr(token_weights, "over_all_tokens", False) else weights.sum()
    return (nll * weights).sum() / denominator.clamp_min(1e-6), counts


def _add_counts(totals: dict, counts: dict) -> None:
    """Sum nested count dicts ({mitigation: {key: number}}) step by step."""
    for key, value in counts.items():
        if isinstance(value, dict):
            _add_counts(totals.setdefault(key, {}), value)
        else:
            totals[key] = totals.get(key, 0) + value


def _reduce_counts(accelerator, counts: dict) -> dict:
    """Sum nested counts over processes (the same keys in the same order everywhere: the same mitigations ran)."""
    out = {}
    for key, value in counts.items():
        if isinstance(value, dict):
            out[key] = _reduce_counts(accelerator, value)
        else:
            total = accelerator.reduce(torch.tensor(float(value), device=accelerator.device), reduction="sum").item()
            out[key] = int(round(total)) if isinstance(value, int) else total
    return out


@dataclass
class TrainStats:
    """What one training did; :meth:`as_dict` is the ``train`` record of meta.json / model_metrics.json."""

    train_tokens: int  # tokens trained on (loss targets), all epochs, no padding
    mix_tokens: int  # tokens of the mix (with BOS/EOS separators)
    mix_tokens_trained: int  # of those, loss targets per epoch (a block's first token is not)
    train_docs: int
    train_steps: int
    train_loss_first: Optional[float]
    train_loss_last: Optional[float]
    train_seconds: float
    memory: Dict[str, float] = field(default_factory=dict)  # peak RSS so far (process), GPU peak: recorded as train_<key>
    train_val_losses: Optional[List[float]] = None  # train.checkpoint=best_val: the validation loss after each epoch
    train_checkpoint_epoch: Optional[int] = None  # ... and the epoch (1-based) whose weights were kept

    def as_dict(self) -> dict:
        optional = ("train_val_losses", "train_checkpoint_epoch")  # only with train.checkpoint=best_val
        out = {k: v for k, v in self.__dict__.items() if k != "memory" and not (k in optional and v is None)}
        return {**out, **{f"train_{k}": v for k, v in self.memory.items()}}


def validation_loss(model, ids: torch.Tensor, labels: torch.Tensor, batch_size: int, accelerator) -> float:
    """Mean NLL per loss target of the validation rows (their padding and masked prompts are not targets)."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            batch, batch_labels = ids[i : i + batch_size].to(accelerator.device), labels[i : i + batch_size].to(accelerator.device)
            with accelerator.autocast():
                logits = model(input_ids=batch).logits[:, :-1].float()
            targets = batch_labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                    ignore_index=-100, reduction="sum")
            total, count = total + nll.item(), count + int((targets != -100).sum())
    model.train()
    return total / max(1, count)


class BestCheckpoint:
    """train.checkpoint=best_val: keeps a CPU copy of the trained weights of the epoch with the lowest validation
    loss (the first such epoch on a tie, as Lightning's ModelCheckpoint(monitor="val_loss", mode="min") keeps)."""

    def __init__(self, params: List[torch.nn.Parameter]):
        self.params, self.losses, self.best, self.weights = params, [], None, None

    def update(self, loss: float) -> None:
        self.losses.append(loss)
        if self.best is None or loss < self.losses[self.best]:
            self.best = len(self.losses) - 1
            self.weights = [p.detach().to("cpu", copy=True) for p in self.params]

    def restore(self) -> int:
        """Load the best epoch's weights back (a no-op when it was the last); its 1-based epoch."""
        if self.best != len(self.losses) - 1:
            with torch.no_grad():
                for p, w in zip(self.params, self.weights):
                    p.copy_(w.to(p.device))
        return self.best + 1


@dataclass
class TrainResult:
    model: Any  # the trained model, unwrapped from accelerate
    stats: TrainStats
    token_stats: Optional[dict] = None  # summed counts of the mitigations' token_weights (None: plain loss)


def train_lora(model, tokenizer, texts: List[str], cfg, seed: int, desc: str = "training", token_weights=None,
               prompt_chars: Optional[List[int]] = None,
               validation: Optional[Tuple[List[str], List[int]]] = None) -> TrainResult:
    """Train ``model`` (a PeftModel, or a full model) in place; return it with its stats (tokens, loss, seconds, memory).

    ``token_weights`` (from the mitigations' ``token_weights`` hooks, see madbench/mitigations) switches the
    step to :func:`weighted_lm_loss`; its summed counts come back as ``token_stats``. None = the plain loss.
    ``prompt_chars`` (sampling.keep_prompt): per text, the leading characters that are a real prompt; their
    tokens are in the mix but not loss targets (madbench.training.packing.pack).
    """
    from accelerate import Accelerator

    from madbench.models.weights import memory, reset_peak

    reset_peak()
    t = cfg.train
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision(cfg))
    blocks, labels, mix_tokens = training_rows(tokenizer, texts, t.seq_len, t.packing, prompt_chars)
    rng = random.Random(f"order:{seed}")
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:  # LoRA weights stay fp32 even on a bf16 base: stable updates
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    steps_per_epoch = math.ceil(len(blocks) / t.batch_size)
    total = steps_per_epoch * t.epochs
    schedule = warmup_cosine(optimizer, t.warmup_steps, total)
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    best = None
    if t.checkpoint == "best_val" and validation:
        val_ids, val_labels, _ = training_rows(tokenizer, validation[0], t.seq_len, t.packing, validation[1])
        best = BestCheckpoint(params)
    model.train()
    start, tokens, losses, token_stats = time.perf_counter(), 0, [], {}
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=None if accelerator.is_main_process else True)
    for _ in range(t.epochs):
        order = list(range(len(blocks)))
        rng.shuffle(order)
        # shard batches across processes so `accelerate launch` splits the work
        batches = [order[i : i + t.batch_size] for i in range(0, len(order), t.batch_size)]
        while len(batches) % accelerator.num_processes:  # equal step counts, or DDP's all-reduce hangs
            batches.append(batches[len(batches) % max(1, len(batches))])
        for b in batches[accelerator.process_index :: accelerator.num_processes]:
            batch, batch_labels = blocks[b].to(accelerator.device), labels[b].to(accelerator.device)
            with accelerator.autocast():  # padding sits after the real tokens: a causal model never attends to it
                if token_weights is None:
                    loss = model(input_ids=batch, labels=batch_labels).loss
                else:
                    loss, counts = weighted_lm_loss(model, batch, batch_labels, token_weights)
                    _add_counts(token_stats, counts)
            accelerator.backward(loss)
            if t.max_grad_norm > 0:  # the HF Trainer's clipping (train.max_grad_norm; 0 = none)
                accelerator.clip_grad_norm_(params, t.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            tokens += target_tokens(batch_labels)
            losses.append(loss.detach().item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if best is not None:
            best.update(validation_loss(model, val_ids, val_labels, cfg.eval.batch_size, accelerator))
    bar.close()
    kept_epoch = best.restore() if best is not None else None
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    accelerator.free_memory()
    if token_weights is not None and accelerator.num_processes > 1:  # every process counted its own batches
        token_stats = _reduce_counts(accelerator, token_stats)
    stats = TrainStats(
        train_tokens=tokens * accelerator.num_processes, mix_tokens=mix_tokens,
        mix_tokens_trained=target_tokens(labels), train_docs=len(texts), train_steps=len(losses),
        train_loss_first=losses[0] if losses else None, train_loss_last=losses[-1] if losses else None,
        train_seconds=time.perf_counter() - start, memory=memory(),
        train_val_losses=best.losses if best is not None else None, train_checkpoint_epoch=kept_epoch)
    return TrainResult(unwrapped, stats, token_stats if token_weights is not None else None)
