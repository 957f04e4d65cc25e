"""Fine-tuning of one generation (a peft LoRA adapter, or every weight), driven by accelerate.

Documents are tokenised, joined with EOS and packed into ``train.seq_len`` blocks
(no padding is trained on). Data order and LoRA init are seeded from
(seed, generation). Under ``accelerate launch`` the same code runs data-parallel.
:func:`train_lora` trains whatever requires a gradient: the LoRA weights, or the
whole model for ``train.method=full`` (see :mod:`madbench.weights`).
"""

from __future__ import annotations

import copy
import math
import random
import time
from typing import List

import torch
from tqdm.auto import tqdm

from .models import bf16_supported


def pack(tokenizer, texts: List[str], seq_len: int) -> torch.Tensor:
    """Tokenise, join with EOS and cut into full blocks of ``seq_len`` tokens."""
    bos = tokenizer.bos_token_id
    stream: List[int] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        stream.extend(([bos] if bos is not None else []) + ids + [tokenizer.eos_token_id])
    if len(stream) < seq_len:
        stream = stream + [tokenizer.eos_token_id] * (seq_len - len(stream))
    n = len(stream) // seq_len
    return torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len)


def make_peft_model(base, cfg, seed: int, init_adapter: str | None):
    """A fresh trainable LoRA model on a copy of ``base``; or continue ``init_adapter``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    # Share the frozen base tensors instead of copying 270 MB per generation: peft only adds
    # LoRA modules, and nothing here writes to base weights (merging for sampling swaps in
    # new tensors, see madbench.inference.merged_lora). Modules and buffers are still copied.
    model = copy.deepcopy(base, memo={id(p): p for p in base.parameters()})
    if init_adapter:
        return PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
    torch.manual_seed(seed)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up over ``warmup_steps``, then cosine decay over ``total_steps`` (stepped once per batch)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup_steps))
                                             * (0.5 * (1 + math.cos(math.pi * s / max(1, total_steps)))))


def mixed_precision(cfg) -> str:
    if cfg.train.mixed_precision == "auto":
        return "bf16" if bf16_supported() else "no"
    return cfg.train.mixed_precision


def train_lora(model, tokenizer, texts: List[str], cfg, seed: int, desc: str = "training") -> dict:
    """Train ``model`` (a PeftModel, or a full model) in place; return stats (tokens, loss, seconds, memory)."""
    from accelerate import Accelerator

    from .weights import memory, reset_peak

    reset_peak()
    t = cfg.train
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision(cfg))
    blocks = pack(tokenizer, texts, t.seq_len)
    rng = random.Random(f"order:{seed}")
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:  # LoRA weights stay fp32 even on a bf16 base: stable updates
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    steps_per_epoch = math.ceil(len(blocks) / t.batch_size)
    total = steps_per_epoch * t.epochs
    schedule = warmup_cosine(optimizer, t.warmup_steps, total)
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    model.train()
    start, tokens, losses = time.perf_counter(), 0, []
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=None if accelerator.is_main_process else True)
    for _ in range(t.epochs):
        order = list(range(len(blocks)))
        rng.shuffle(order)
        # shard batches across processes so `accelerate launch` splits the work
        batches = [order[i : i + t.batch_size] for i in range(0, len(order), t.batch_size)]
        while len(batches) % accelerator.num_processes:  # equal step counts, or DDP's all-reduce hangs
            batches.append(batches[len(batches) % max(1, len(batches))])
        for b in batches[accelerator.process_index :: accelerator.num_processes]:
            batch = blocks[b].to(accelerator.device)
            with accelerator.autocast():
                loss = model(input_ids=batch, labels=batch).loss
            accelerator.backward(loss)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            tokens += batch.numel()
            losses.append(loss.detach().item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    accelerator.free_memory()
    return {
        "model": unwrapped,
        "train_tokens": tokens * accelerator.num_processes,
        "train_docs": len(texts),
        "train_steps": len(losses),
        "train_loss_first": losses[0] if losses else None,
        "train_loss_last": losses[-1] if losses else None,
        "train_seconds": time.perf_counter() - start,
        **{f"train_{k}": v for k, v in memory().items()},  # peak RSS so far (process), GPU peak of this training
    }
