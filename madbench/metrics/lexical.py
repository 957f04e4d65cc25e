"""Lexical diversity of a generation's samples: distinct-n, type-token ratio, entropy, Zipf, compression.

Tokenisation is lower-cased words and punctuation marks (the usual choice of
distinct-n papers, Li et al. 2016), so scores do not depend on the model's tokenizer.
Word statistics (entropy, Zipf exponent) and the compression ratio are pooled over
all samples of the generation. Exercise with ``pytest tests/test_metrics.py``.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import Counter
from typing import List, Optional

import numpy as np

from madbench.metrics import METRICS

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> List[str]:
    return list(_cached_words(text))


@functools.lru_cache(maxsize=8192)  # the interval bootstrap scores each sample hundreds of times
def _cached_words(text: str) -> tuple:
    return tuple(_WORD.findall(text.lower()))


def ngrams(tokens: List[str], n: int):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: List[str], n: int) -> float:
    """Unique n-grams / total n-grams over all texts (corpus-level distinct-n)."""
    total, unique = 0, set()
    for t in texts:
        grams = _cached_ngrams(t, n)
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


@functools.lru_cache(maxsize=16384)  # four orders per sample, re-counted by every bootstrap resample
def _cached_ngrams(text: str, n: int) -> tuple:
    return tuple(ngrams(words(text), n))


for _n in (1, 2, 3, 4):

    def _make(n):
        def metric(ctx):
            return distinct_n(ctx.samples, n)

        metric.__doc__ = f"Distinct-{n}: unique {n}-grams / all {n}-grams across the generation's samples."
        return metric

    METRICS.register(f"distinct_{_n}", higher_is_better=True, needs="samples", value_range=(0.0, 1.0))(_make(_n))


@METRICS.register("type_token_ratio", higher_is_better=True, needs="samples", value_range=(0.0, 1.0))
def type_token_ratio(ctx) -> float:
    """Mean per-sample type-token ratio (unique words / words within each sample); corpus-level is distinct_1."""
    ratios = [len(set(w)) / len(w) for w in (words(t) for t in ctx.samples) if w]
    return sum(ratios) / len(ratios) if ratios else 0.0


@METRICS.register("mean_length", higher_is_better=None, needs="samples", value_range=(0.0, None))
def mean_length(ctx) -> float:
    """Mean number of words per sample."""
    return sum(len(words(t)) for t in ctx.samples) / max(1, len(ctx.samples))


def word_counts(texts: List[str]) -> Counter:
    return Counter(w for t in texts for w in words(t))


@METRICS.register("unigram_entropy", higher_is_better=True, needs="samples", value_range=(0.0, None))
def unigram_entropy(ctx) -> float:
    """Shannon entropy (bits) of the word unigram distribution pooled over all samples."""
    counts = np.array(list(word_counts(ctx.samples).values()), dtype=float)
    if counts.sum() == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@METRICS.register("zipf_exponent", higher_is_better=None, needs="samples")
def zipf_exponent(ctx) -> Optional[float]:
    """Zipf exponent s: minus the least-squares slope of log-frequency vs log-rank of the samples' words (human prose: about 1)."""
    counts = np.array(sorted(word_counts(ctx.samples).values(), reverse=True), dtype=float)
    if len(counts) < 2:
        return None
    x = np.log(np.arange(1, len(counts) + 1))
    design = np.stack([x, np.ones_like(x)], axis=1)
    (slope, _), *_ = np.linalg.lstsq(design, np.log(counts), rcond=None)
    return float(-slope)


@METRICS.register("compression_ratio", higher_is_better=False, needs="samples", value_range=(0.0, None))
def compression_ratio(ctx) -> Optional[float]:
    """Bytes of the newline-joined samples / bytes after zlib level 9; higher = more redundant text (lower is more diverse)."""
    raw = "\n".join(ctx.samples).encode("utf-8")
    return len(raw) / len(zlib.compress(raw, 9)) if raw else None
