"""Tails against human text: does a generation still know the held-out text's rare words and tokens?

    madbench run --preset smoke        # rare_word_recall, rare_token_mass, rare_token_mass_ratio per generation

Collapse forgets the tails of the distribution first (Shumailov et al. 2024). Two views:

  rare_word_recall       expected share of the held-out text's rare word types (outside its 1,000 most frequent,
                         or its most frequent half when it has under 2,000 types) found in a fixed budget of
                         ``RECALL_WORDS`` sample words (rarefaction: independent of sample length; None below it)
  rare_token_mass        mean probability the generation's model gives the held-out text's rare tokens
                         at their positions (rare: outside the most frequent token types that cover 90%
                         of the held-out tokens)
  rare_token_mass_ratio  rare_token_mass of the generation's model / that of the generation-0 model
                         (1 at generation 0; below 1: the tails are thinning)

The two rare_token_* metrics have ``needs="reference"``: the loop gives them the generation-0 model as
``ctx.model`` and the generation's model as ``ctx.cache["current_model"]``.
"""

from __future__ import annotations

import functools
import math

from collections import Counter
from typing import List, Sequence, Set

import torch

from madbench.metrics import METRICS
from madbench.metrics.perplexity import pad_batch

RARE_TOP_K = 1000  # a held-out word type is rare when it is not among the held-out text's 1,000 most frequent
RECALL_WORDS = 400  # rare_word_recall's word budget: fixed, so the recall does not track sample length
FREQUENT_COVERAGE = 0.9  # token types covering this share of the held-out tokens are frequent; the rest are rare


def rare_types(human: Sequence[str], top_k: int = RARE_TOP_K) -> set:
    """Lower-cased alphabetic word types of the human text outside its ``top_k`` most frequent (ties by first use).

    A held-out text with fewer than ``2 * top_k`` types (a small eval set) uses its most frequent half instead,
    so the metric stays defined.
    """
    from madbench.metrics.lexical import words

    counts = Counter(w.lower() for t in human for w in words(t) if w.isalpha())
    return {w for w, _ in counts.most_common()[min(top_k, len(counts) // 2):]}


@METRICS.register("rare_word_recall", higher_is_better=True, needs="human", value_range=(0.0, 1.0))
def rare_word_recall(ctx):
    """Expected share of the held-out human text's rare word types (outside its 1,000 most frequent) found in 400 words of the samples."""
    from madbench.metrics.lexical import words

    rare = _human_rare(tuple(ctx.human))
    sample = [w.lower() for t in ctx.samples for w in words(t) if w.isalpha()]
    return rarefied_recall(sample, rare) if rare else None


def rarefied_recall(sample_words: Sequence[str], rare, budget: int = RECALL_WORDS):
    """Expected share of the types ``rare`` seen in ``budget`` words drawn without replacement from ``sample_words``.

    Rarefaction (Hurlbert 1971): a type with c of the N pooled words is missed by the draw with probability
    C(N - c, budget) / C(N, budget). On a fixed word budget the recall no longer grows with sample length
    (before: 64 KJV passages cut at 48 words 0.18-0.20, at 24 words 0.105-0.109). None when the samples hold
    fewer than ``budget`` words."""
    n = len(sample_words)
    if n < budget or not rare:
        return None
    counts = Counter(w for w in sample_words if w in rare)
    log_all = math.lgamma(n + 1) - math.lgamma(n - budget + 1)

    def seen(c):
        if n - c < budget:
            return 1.0
        return 1.0 - math.exp(math.lgamma(n - c + 1) - math.lgamma(n - c - budget + 1) - log_all)

    return sum(seen(c) for c in counts.values()) / len(rare)


@functools.lru_cache(maxsize=4)  # the interval bootstrap scores the same human text a hundred times
def _human_rare(human: tuple) -> frozenset:
    """The held-out text's rare word types (cached: the interval bootstrap scores the same human text again)."""
    return frozenset(rare_types(human))


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
def rare_probs(model, tokenizer, encoded, rare: Set[int], batch_size: int = 16) -> List[List[float]]:
    """Per held-out document, the probability ``model`` gives each rare target token at its position."""
    from madbench.models.inference import merged_lora

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    per_doc: List[List[float]] = []
    model.eval()
    with merged_lora(model):
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            ids, mask = pad_batch(batch, pad)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu()
            for row, seq in enumerate(batch):
                per_doc.append([float(logp[row, i - 1].exp()) for i in range(1, len(seq)) if seq[i] in rare])
    return per_doc


def mass(per_doc: Sequence[Sequence[float]]) -> float:
    """Mean over every rare token of every document (documents in order, as they were scored)."""
    probs = [p for doc in per_doc for p in doc]
    return sum(probs) / len(probs) if probs else float("nan")


def rare_mass(model, tokenizer, encoded, rare: Set[int], batch_size: int = 16) -> float:
    """Mean probability ``model`` gives each rare target token at its position in the held-out text."""
    return mass(rare_probs(model, tokenizer, encoded, rare, batch_size))


def _per_doc(ctx):
    """(current model's, generation 0's) rare-token probabilities per held-out document; generation 0's once per model."""
    if "rare_probs" not in ctx.cache:
        encoded = encode(ctx.tokenizer, ctx.human)
        rare = rare_token_ids(encoded)
        current = ctx.cache.get("current_model") or ctx.model
        key = hash((tuple(map(tuple, encoded)), ctx.batch_size))
        reference = ctx.scores.get("rare_probs", key) if ctx.scores is not None else None  # the reference lives all run
        if reference is None:
            reference = rare_probs(ctx.model, ctx.tokenizer, encoded, rare, ctx.batch_size)
            if ctx.scores is not None:
                ctx.scores.put("rare_probs", key, reference)
        # at generation 0 the chain's model is generation 0 itself: its probabilities are the reference's
        ctx.cache["rare_probs"] = (reference if current is ctx.model else current_rare_probs(current, ctx, encoded, rare), reference)
    return ctx.cache["rare_probs"]


def current_rare_probs(model, ctx, encoded, rare: Set[int], scores=None) -> List[List[float]]:
    """The generation's model's rare-token probabilities: read from its perplexity forward on the same held-out
    texts when that ran into the model's ScoreCache ``scores`` (evaluate_model does, before the samples are
    scored; ``ctx.cache["current_scores"]`` when not given), else computed."""
    from madbench.metrics.perplexity import remembered_target_logp

    logp = remembered_target_logp(scores if scores is not None else ctx.cache.get("current_scores"), ctx.human)
    if logp is None or any(row is None or len(row) != len(seq) - 1 for row, seq in zip(logp, encoded)):
        return rare_probs(model, ctx.tokenizer, encoded, rare, ctx.batch_size)
    return [[math.exp(row[i - 1]) for i in range(1, len(seq)) if seq[i] in rare] for row, seq in zip(logp, encoded)]


def _masses(ctx):
    current, g0 = _per_doc(ctx)
    return mass(current), mass(g0)


def rare_intervals(names: Sequence[str], ctx) -> dict:
    """95% intervals of the rare_token_* metrics: a bootstrap over held-out documents (the same draw for both models).

    Run after the metrics themselves (it reads their cached per-document probabilities)."""
    import numpy as np

    from madbench.metrics.intervals import bootstrap_interval

    wanted = [n for n in names if n in ("rare_token_mass", "rare_token_mass_ratio")]
    if not wanted or "rare_probs" not in ctx.cache:
        return {}
    current, g0 = ctx.cache["rare_probs"]
    cur_sum = np.array([sum(d) for d in current]); g0_sum = np.array([sum(d) for d in g0])
    counts = np.array([len(d) for d in current], dtype=float)

    def current_mass(idx):
        n = counts[idx].sum()
        return float(cur_sum[idx].sum() / n) if n else None

    def ratio(idx):
        n = counts[idx].sum()
        return float(cur_sum[idx].sum() / g0_sum[idx].sum()) if n and g0_sum[idx].sum() > 0 else None

    values = {"rare_token_mass": mass(current), "rare_token_mass_ratio": mass(current) / mass(g0) if g0 and mass(g0) else None}
    stats = {"rare_token_mass": current_mass, "rare_token_mass_ratio": ratio}
    out = {}
    for name in wanted:
        interval = bootstrap_interval(stats[name], len(current), values[name], recentre=False)
        if interval is not None:
            out[name] = interval
    return out


@METRICS.register("rare_token_mass", higher_is_better=True, needs="reference", value_range=(0.0, 1.0))
def rare_token_mass(ctx):
    """Mean probability the generation's model gives the held-out text's rare tokens (outside the types covering 90%)."""
    current, _ = _masses(ctx)
    return None if current != current else current


@METRICS.register("rare_token_mass_ratio", higher_is_better=True, needs="reference", value_range=(0.0, None))
def rare_token_mass_ratio(ctx):
    """rare_token_mass of the generation's model over that of the generation-0 model (1 at generation 0)."""
    current, g0 = _masses(ctx)
    return None if not g0 or g0 != g0 else current / g0
