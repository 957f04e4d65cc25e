"""Batched sampling of synthetic documents from a generation's model.

Prompts are the first ``data.prompt_words`` words of real training-pool documents
(or just BOS when ``sampling.prompt=none``). Batches are sorted by prompt length
and left-padded; the RNG is seeded from (seed, generation) so a resumed run
samples exactly what an uninterrupted one would.
"""

from __future__ import annotations

import random
from typing import List

import torch
from tqdm.auto import tqdm

from .corpus import Doc


def make_prompts(cfg, pool: List[Doc], n: int, seed: int, generation: int) -> List[str]:
    if cfg.sampling.prompt == "none":
        return [""] * n
    rng = random.Random(f"prompts:{seed}:{generation}")
    picks = [pool[rng.randrange(len(pool))] for _ in range(n)]
    return [" ".join(d.text.split()[: cfg.data.prompt_words]) for d in picks]


@torch.no_grad()
def generate(model, tokenizer, prompts: List[str], cfg, seed: int, logits_processors=(), desc="sampling") -> List[str]:
    """Return one completion (prompt + continuation) per prompt, in prompt order."""
    s = cfg.sampling
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[bos] + tokenizer(p, add_special_tokens=False)["input_ids"] if p else [bos] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: List[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    gen_kwargs = dict(
        max_new_tokens=s.max_new_tokens,
        do_sample=s.num_beams == 1,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k or None,
        num_beams=s.num_beams,
        repetition_penalty=s.repetition_penalty,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
    )
    if logits_processors:
        from transformers import LogitsProcessorList

        gen_kwargs["logits_processor"] = LogitsProcessorList(list(logits_processors))
    model.eval()
    bar = tqdm(total=len(prompts), desc=desc, unit="doc", leave=False, dynamic_ncols=True)
    for start in range(0, len(order), s.batch_size):
        idx = order[start : start + s.batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]) :] = 1
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **gen_kwargs)
        for row, i in enumerate(idx):
            text = tokenizer.decode(out[row, width - len(encoded[i]) :], skip_special_tokens=True)
            outputs[i] = " ".join(text.split())
        bar.update(len(idx))
    bar.close()
    return outputs
