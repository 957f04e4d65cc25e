"""Tails against human text: does a generation still know the held-out text's rare words and tokens?

    madbench run --preset smoke        # rare_word_recall, rare_token_mass, rare_token_mass_ratio per generation

Collapse forgets the tails of the distribution first (Shumailov et al. 2024). Two views:

  rare_word_recall       share of the held-out text's rare word types (outside its 1,000 most frequent,
                         or its most frequent half when it has under 2,000 types) that the samples use, on as many sample words as the held-out text has
  rare_token_mass        mean probability the generation's model gives the held-out text's rare tokens
                         at their positions (rare: outside the most frequent token types that cover 90%
                         of the held-out tokens)
  rare_token_mass_ratio  rare_token_mass of the generation's model / that of the generation-0 model
                         (1 at generation 0; below 1: the tails are thinning)

The two rare_token_* metrics have ``needs="reference"``: the loop gives them the generation-0 model as
``ctx.model`` and the generation's model as ``ctx.cache["current_model"]``.
"""

from __future__ import annotations

from collections import Counter
from typing import List, Sequence, Set

import torch

from madbench.metrics import METRICS
from madbench.metrics.perplexity import pad_batch

RARE_TOP_K = 1000  # a held-out word type is rare when it is not among the held-out text's 1,000 most frequent
FREQUENT_COVERAGE = 0.9  # token types covering this share of the held-out tokens are frequent; the rest are rare


def rare_types(human: Sequence[str], top_k: int = RARE_TOP_K) -> set:
    """Lower-cased alphabetic word types of the human text outside its ``top_k`` most frequent (ties by first use).

    A held-out text with fewer than ``2 * top_k`` types (a small eval set) uses its most frequent half instead,
    so the metric stays defined.
    """
    from madbench.metrics.lexical import words

    counts = Counter(w.lower() for t in human for w in words(t) if w.isalpha())
    return {w for w, _ in counts.most_common()[min(top_k, len(counts) // 2):]}


@METRICS.register("rare_word_recall", higher_is_better=True, needs="human")
def rare_word_recall(ctx):
    """Share of the held-out human text's rare word types (outside its 1,000 most frequent) that the samples use, per as many sample words as human words."""
    from madbench.metrics.lexical import words

    rare = rare_types(ctx.human)
    budget = sum(1 for t in ctx.human for w in words(t) if w.isalpha())
    sample = [w.lower() for t in ctx.samples for w in words(t) if w.isalpha()]
    if not rare or not sample:
        return None
    # normalise by sample size: the first `budget` sample words, repeated when the samples are shorter
    sample = (sample * (budget // len(sample) + 1))[:budget]
    return len(rare & set(sample)) / len(rare)


def encode(tokenizer, texts: Sequence[str], max_length: int = 512) -> List[List[int]]:
    """BOS + token ids of each text, as the perplexity metric scores them."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [[bos] + tokenizer(t, add_special_tokens=False)["input_ids"][: max_length - 1] for t in texts]


def rare_token_ids(encoded: Sequence[Sequence[int]], coverage: float = FREQUENT_COVERAGE) -> Set[int]:
    """Target token types outside the most frequent ones that together cover ``coverage`` of all targets."""
    counts = Counter(t for ids in encoded for t in ids[1:])
    total, seen, frequent = sum(counts.values()), 0, set()
    for token, n in counts.most_common():
        if seen >= coverage * total:
            break
        frequent.add(token)
        seen += n
    return set(counts) - frequent


@torch.no_grad()
def rare_mass(model, tokenizer, encoded, rare: Set[int], batch_size: int = 16) -> float:
    """Mean probability ``model`` gives each rare target token at its position in the held-out text."""
    from madbench.models.inference import merged_lora

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    probs: List[float] = []
    model.eval()
    with merged_lora(model):
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            ids, mask = pad_batch(batch, pad)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu()
            for row, seq in enumerate(batch):
                probs += [float(logp[row, i - 1].exp()) for i in range(1, len(seq)) if seq[i] in rare]
    return sum(probs) / len(probs) if probs else float("nan")


def _masses(ctx):
    """(current model's, generation 0's) rare-token mass; generation 0's is computed once per reference model."""
    if "rare_mass" not in ctx.cache:
        encoded = encode(ctx.tokenizer, ctx.human)
        rare = rare_token_ids(encoded)
        current = ctx.cache.get("current_model") or ctx.model
        memo = ctx.model.__dict__.setdefault("_madbench_rare_mass", {})  # the reference model lives for the whole run
        key = hash((tuple(map(tuple, encoded)), ctx.batch_size))
        if key not in memo:
            memo[key] = rare_mass(ctx.model, ctx.tokenizer, encoded, rare, ctx.batch_size)
        ctx.cache["rare_mass"] = (rare_mass(current, ctx.tokenizer, encoded, rare, ctx.batch_size), memo[key])
    return ctx.cache["rare_mass"]


@METRICS.register("rare_token_mass", higher_is_better=True, needs="reference")
def rare_token_mass(ctx):
    """Mean probability the generation's model gives the held-out text's rare tokens (outside the types covering 90%)."""
    current, _ = _masses(ctx)
    return None if current != current else current


@METRICS.register("rare_token_mass_ratio", higher_is_better=True, needs="reference")
def rare_token_mass_ratio(ctx):
    """rare_token_mass of the generation's model over that of the generation-0 model (1 at generation 0)."""
    current, g0 = _masses(ctx)
    return None if not g0 or g0 != g0 else current / g0
