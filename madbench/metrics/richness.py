"""Length-robust lexical richness of a generation's samples: MTLD and HD-D (lexicalrichness).

Both are computed on the samples' words (lower-cased, punctuation dropped), with
the samples concatenated in order, so they measure the diversity of the whole
generation rather than of one short sample: MTLD (McCarthy & Jarvis 2010,
threshold 0.72) is the mean length of word runs that keep a type-token ratio above
the threshold; HD-D (McCarthy & Jarvis 2007) is the expected type-token ratio of a
random draw of 42 words. Exercise with ``pytest tests/test_metrics.py``.
"""

from __future__ import annotations

from typing import List, Optional

from madbench.metrics import METRICS
from madbench.metrics.lexical import words

MTLD_THRESHOLD = 0.72
HDD_DRAWS = 42


def content_words(texts: List[str]) -> List[str]:
    return [w for t in texts for w in words(t) if w[0].isalnum() or w[0] == "_"]


def _richness(tokens: List[str]):
    from lexicalrichness import LexicalRichness

    return LexicalRichness(tokens, preprocessor=None, tokenizer=None)


@METRICS.register("mtld", higher_is_better=True, needs="samples", value_range=(0.0, None))
def mtld(ctx) -> Optional[float]:
    """MTLD (threshold 0.72) of the samples' concatenated words; higher = more diverse vocabulary."""
    tokens = content_words(ctx.samples)
    return float(_richness(tokens).mtld(threshold=MTLD_THRESHOLD)) if tokens else None


@METRICS.register("hdd", higher_is_better=True, needs="samples", value_range=(0.0, 1.0))
def hdd(ctx) -> Optional[float]:
    """HD-D (42 draws) of the samples' concatenated words: expected type-token ratio of a 42-word draw."""
    tokens = content_words(ctx.samples)
    return hdd_of(tokens) if len(tokens) >= HDD_DRAWS else None


def hdd_of(tokens: List[str], draws: int = HDD_DRAWS) -> float:
    """lexicalrichness's ``hdd``, term for term, with scipy's hypergeometric pmf evaluated for all types in one call.

    The library calls ``hypergeom.pmf`` once per word type; the interval bootstrap scores a generation a
    hundred times, so that was seconds per generation. Same terms, same order, same Python sum: equal bits.
    """
    import numpy as np
    from collections import Counter

    from scipy.stats import hypergeom

    freqs = np.fromiter(Counter(tokens).values(), dtype=np.int64)
    contributions = (1 - hypergeom.pmf(0, len(tokens), freqs, draws)) / draws
    return float(sum(contributions.tolist()))
