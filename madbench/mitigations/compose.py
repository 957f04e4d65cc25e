"""Compose sample filters so that a chain trains on ``sampling.num_samples`` kept documents.

Each filter keeps a share of what it is given (``dedup`` at most 1/oversample, score
filters ``keep_fraction``), so a chain samples ``num_samples`` times the *product* of
the filters' oversampling factors and runs the filters in order. When duplicates leave
too few documents, it samples more (further rounds sized by the yield so far: ``SURE_TOP_UPS``
always, then more as long as each adds kept documents, at most ``MAX_TOP_UPS``) and runs the filters again over
everything sampled; a surplus is cut in sampling order. If that cannot reach
``num_samples`` (a round that adds nothing: the sampler has collapsed onto what is kept)
the generation fails with one line naming the mitigations and what to change. Every filter's kept/dropped counts of
the final pass stay recorded, beside ``composition``'s totals::

    madbench run --preset smoke 'loop.mitigations=[[dedup,verifier_filter]]'
"""

from __future__ import annotations

import math
from typing import Callable, List, Tuple

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError

SURE_TOP_UPS = 2  # extra sampling rounds always tried when short
MAX_TOP_UPS = 6  # extra sampling rounds at most; past SURE_TOP_UPS, a round that adds no kept document ends the search


def oversample_factor(mitigations) -> float:
    """Product of the oversampling factors: every filter shrinks its input in turn."""
    factor = 1.0
    for m in mitigations:
        factor *= max(1.0, float(m.oversample()))
    return factor


def run_filters(docs: List[Doc], mitigations, ctx) -> Tuple[List[Doc], dict]:
    kept, stats = docs, {}
    for m in mitigations:
        kept, s = m.filter_samples(kept, ctx)
        if s:
            stats[m.name] = {**stats.get(m.name, {}), **s}
    return kept, stats


def compose_samples(draw: Callable[[int, int], List[Doc]], mitigations, ctx, target: int, where: str = ""
                    ) -> Tuple[List[Doc], List[Doc], dict]:
    """(every sampled doc, ``target`` kept docs, stats); ``draw(n, round)`` samples n new docs."""
    factor = oversample_factor(mitigations)
    docs = draw(int(math.ceil(target * factor - 1e-9)), 0)
    kept, stats = run_filters(docs, mitigations, ctx)
    rounds, progress = 1, True
    while len(kept) < target and mitigations and (rounds <= SURE_TOP_UPS or (progress and rounds <= MAX_TOP_UPS)):
        rate = max(len(kept) / max(1, len(docs)), 1.0 / (4 * factor))  # the yield so far, floored
        n = min(int(math.ceil((target - len(kept)) / rate * 1.2)), int(math.ceil(4 * factor * target)))
        docs = docs + draw(n, rounds)
        before = len(kept)
        kept, stats = run_filters(docs, mitigations, ctx)
        rounds, progress = rounds + 1, len(kept) > before
    if len(kept) < target:
        names = "+".join(m.name for m in mitigations) or "none"
        counts = ", ".join(f"{k} kept {v.get('kept')}" for k, v in stats.items() if "kept" in v)
        raise MadbenchError(
            f"{where}mitigations {names} kept {len(kept)} of sampling.num_samples={target} documents from {len(docs)} "
            f"sampled in {rounds} rounds ({counts}); raise the filters' oversample / keep_fraction, loosen dedup's "
            f"threshold, or lower sampling.num_samples")
    surplus = len(kept) - target
    kept = kept[:target]
    if mitigations:
        stats["composition"] = {"sampled": len(docs), "rounds": rounds, "oversample": round(factor, 4),
                                "kept": len(kept), "surplus_dropped": surplus}
    return docs, kept, stats
