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
from typing import List, Optional, Sequence

import numpy as np

from madbench.metrics import METRICS
from madbench.metrics.lexical import ngrams, words

SELF_BLEU_MAX = 64  # hypotheses (and reference pool) used for self-BLEU


def self_bleu(texts: List[str], max_samples: int = SELF_BLEU_MAX) -> Optional[float]:
    """Mean sentence BLEU-4 (0-1) of each text against the others as references."""
    scores = self_bleu_scores(texts, max_samples)
    return sum(scores) / len(scores) if scores else None


def self_bleu_scores(texts: List[str], max_samples: int = SELF_BLEU_MAX) -> List[float]:
    """Sentence BLEU-4 (0-1) of each non-empty text against the others (self-BLEU is their mean)."""
    pool = SelfBleuPool(texts, max_samples)
    return pool.scores(np.arange(pool.size)) if pool.size >= 2 else []


class SelfBleuPool:
    """Self-BLEU of any subset of a fixed pool of texts, n-grams counted once.

    Each text's n-gram counts in every other text are tabulated once (a k x n matrix per text), so a
    subset's self-BLEU (its interval re-scores half-samples with their own reference pool) costs a few
    array maxima instead of re-extracting every reference. The statistics are sacrebleu's
    (``_compute_segment_statistics``: clipped counts against the max over references, closest reference
    length, ties to the shorter) and the score is sacrebleu's ``BLEU.compute_bleu``; the test checks it
    against ``BLEU.sentence_score``.
    """

    ORDER = 4

    def __init__(self, texts: List[str], max_samples: int = SELF_BLEU_MAX):
        from sacrebleu.metrics import BLEU
        from sacrebleu.metrics.helpers import extract_all_word_ngrams

        self.bleu = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.1, effective_order=True)
        extracted = [extract_all_word_ngrams(" ".join(words(t)), 1, self.ORDER) for t in texts[:max_samples]]
        self.size = len(extracted)
        self.lengths = np.asarray([n for _, n in extracted])
        self._orders, self._hyp, self._in_text = [], [], []
        for counts, _ in extracted:
            grams = list(counts)
            self._orders.append(np.asarray([len(g) - 1 for g in grams], dtype=int))
            self._hyp.append(np.asarray([counts[g] for g in grams], dtype=float))
            self._in_text.append(np.asarray([[other.get(g, 0) for other, _ in extracted] for g in grams],
                                            dtype=float).reshape(len(grams), self.size))

    def scores(self, idx: Sequence[int]) -> List[float]:
        """BLEU (0-1) of each non-empty text of the subset ``idx`` against the subset's other texts."""
        idx = np.asarray(idx, dtype=int)
        out = []
        for pos, i in enumerate(idx):
            if self.lengths[i] == 0:  # sacrebleu scores only non-empty hypotheses
                continue
            others = np.delete(idx, pos)
            if len(others) == 0:
                continue
            matched = np.minimum(self._hyp[i], self._in_text[i][:, others].max(axis=1))
            correct = np.bincount(self._orders[i], weights=matched, minlength=self.ORDER)
            total = np.bincount(self._orders[i], weights=self._hyp[i], minlength=self.ORDER)
            ref_lens = self.lengths[others]
            diff = np.abs(ref_lens - self.lengths[i])
            ref_len = int(ref_lens[diff == diff.min()].min())  # closest reference length, ties to the shorter
            score = self.bleu.compute_bleu([int(c) for c in correct], [int(t) for t in total], int(self.lengths[i]),
                                           ref_len, smooth_method="floor", smooth_value=0.1, effective_order=True,
                                           max_ngram_order=self.ORDER)
            out.append(score.score / 100.0)
        return out

    def mean(self, idx: Sequence[int]) -> Optional[float]:
        """Self-BLEU of the subset ``idx`` (None under two texts)."""
        scores = self.scores(idx)
        return sum(scores) / len(scores) if scores else None


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


@METRICS.register("self_bleu", higher_is_better=False, needs="samples", value_range=(0.0, 1.0))
def self_bleu_metric(ctx) -> Optional[float]:
    """Self-BLEU-4 (0-1): mean BLEU of each sample against the other samples; higher = samples more alike."""
    pool = ctx.cache["self_bleu:pool"] = SelfBleuPool(ctx.samples)  # kept for its interval (half-samples)
    return pool.mean(np.arange(pool.size)) if pool.size >= 2 else None


@METRICS.register("repetition_4gram", higher_is_better=False, needs="samples", value_range=(0.0, 1.0))
def repetition_4gram(ctx) -> Optional[float]:
    """Mean share of a sample's 4-grams that repeat an earlier 4-gram of the same sample (looping)."""
    return repetition_rate(ctx.samples, 4)


@METRICS.register("duplicate_rate", higher_is_better=False, needs="samples", value_range=(0.0, 1.0))
def duplicate_rate_metric(ctx) -> Optional[float]:
    """Share of samples that exactly duplicate an earlier sample (case and whitespace ignored)."""
    return duplicate_rate(ctx.samples)
