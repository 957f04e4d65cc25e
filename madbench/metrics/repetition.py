"""Repetition within and across a generation's samples: self-BLEU, looping n-grams, duplicates.

Self-BLEU (Zhu et al. 2018, Texygen): each sample is scored with BLEU-4 against
all the other samples as references, and the scores are averaged; higher means the
samples resemble one another. It uses sacrebleu on the same word tokens as
distinct-n, with the "floor" smoothing that equals nltk's ``method1`` (epsilon 0.1),
on at most ``SELF_BLEU_MAX`` samples (the first ones; sampling order is already random)
so the cost stays quadratic in a small number. Exercise with ``pytest tests/test_metrics.py``.
"""

from __future__ import annotations

import re
from typing import List, Optional

from madbench.metrics import METRICS
from madbench.metrics.lexical import ngrams, words

SELF_BLEU_MAX = 64  # hypotheses (and reference pool) used for self-BLEU


def self_bleu(texts: List[str], max_samples: int = SELF_BLEU_MAX) -> Optional[float]:
    """Mean sentence BLEU-4 (0-1) of each text against the others as references."""
    scores = self_bleu_scores(texts, max_samples)
    return sum(scores) / len(scores) if scores else None


def self_bleu_scores(texts: List[str], max_samples: int = SELF_BLEU_MAX) -> List[float]:
    """Sentence BLEU-4 (0-1) of each non-empty text against the others (self-BLEU is their mean)."""
    from sacrebleu.metrics import BLEU

    tokenized = [" ".join(words(t)) for t in texts[:max_samples]]
    if len(tokenized) < 2:
        return []
    bleu = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.1, effective_order=True)
    return [bleu.sentence_score(hyp, tokenized[:i] + tokenized[i + 1:]).score / 100.0
            for i, hyp in enumerate(tokenized) if hyp]


def repetition_rate(texts: List[str], n: int = 4) -> Optional[float]:
    """Mean over samples of the share of n-gram occurrences that repeat an earlier n-gram of the same sample."""
    rates = []
    for text in texts:
        grams = ngrams(words(text), n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else None


def duplicate_rate(texts: List[str]) -> Optional[float]:
    """Share of samples identical (case and whitespace ignored) to an earlier sample."""
    if not texts:
        return None
    norm = [re.sub(r"\s+", " ", t.strip().lower()) for t in texts]
    return 1.0 - len(set(norm)) / len(norm)


@METRICS.register("self_bleu", higher_is_better=False, needs="samples")
def self_bleu_metric(ctx) -> Optional[float]:
    """Self-BLEU-4 (0-1): mean BLEU of each sample against the other samples; higher = samples more alike."""
    scores = ctx.cache["self_bleu:scores"] = self_bleu_scores(ctx.samples)  # kept for its interval
    return sum(scores) / len(scores) if scores else None


@METRICS.register("repetition_4gram", higher_is_better=False, needs="samples")
def repetition_4gram(ctx) -> Optional[float]:
    """Mean share of a sample's 4-grams that repeat an earlier 4-gram of the same sample (looping)."""
    return repetition_rate(ctx.samples, 4)


@METRICS.register("duplicate_rate", higher_is_better=False, needs="samples")
def duplicate_rate_metric(ctx) -> Optional[float]:
    """Share of samples that exactly duplicate an earlier sample (case and whitespace ignored)."""
    return duplicate_rate(ctx.samples)
