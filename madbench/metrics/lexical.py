"""Lexical diversity of a generation's samples (distinct-n, type-token ratio).

Tokenisation is lower-cased words and punctuation marks (the usual choice of
distinct-n papers, Li et al. 2016), so scores do not depend on the model's tokenizer.
"""

from __future__ import annotations

import re
from typing import List

from . import METRICS

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: List[str], n: int):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: List[str], n: int) -> float:
    """Unique n-grams / total n-grams over all texts (corpus-level distinct-n)."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


for _n in (1, 2, 3, 4):

    def _make(n):
        def metric(ctx):
            return distinct_n(ctx.samples, n)

        metric.__doc__ = f"Distinct-{n}: unique {n}-grams / all {n}-grams across the generation's samples."
        return metric

    METRICS.register(f"distinct_{_n}", higher_is_better=True, needs="samples")(_make(_n))


@METRICS.register("type_token_ratio", higher_is_better=True, needs="samples")
def type_token_ratio(ctx) -> float:
    """Unique words / words across all samples."""
    return distinct_n(ctx.samples, 1)


@METRICS.register("mean_length", higher_is_better=None, needs="samples")
def mean_length(ctx) -> float:
    """Mean number of words per sample."""
    return sum(len(words(t)) for t in ctx.samples) / max(1, len(ctx.samples))
