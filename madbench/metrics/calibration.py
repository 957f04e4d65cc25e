"""Coverage of madbench's estimator intervals on data whose sampling distribution is known.

The population is every passage of the KJV corpus cut at ``doc_words`` words (as ``data/corpus.py``
cuts it). ``truth_sets`` independent sets of ``set_size`` passages give the metric's sampling
distribution; its mean over those sets is the target (the estimator's expected value at this
sample size, which is what an interval around a measured value claims to cover), and its central
95% range is the width an honest interval should have. On ``interval_sets`` further independent
sets madbench's own interval (``metrics/intervals.py``) is computed; coverage is the share of those
intervals that contain the target.

    python scripts/calibrate.py --truth-sets 300 --interval-sets 60
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from madbench.data.corpus import kjv_texts, passages
from madbench.metrics import METRICS, MetricContext
from madbench.metrics.intervals import compute_intervals

# sample metrics that need no model or embedder (cheap enough to score hundreds of sets)
LEXICAL = ("distinct_1", "distinct_2", "type_token_ratio", "unigram_entropy", "mean_length", "zipf_exponent",
           "compression_ratio", "mtld", "hdd", "self_bleu", "repetition_4gram", "duplicate_rate")


def kjv_population(doc_words: int = 48) -> List[str]:
    """Every KJV passage of about ``doc_words`` words."""
    return passages(kjv_texts(), doc_words)


def _score(names: Sequence[str], texts: List[str], with_intervals: bool):
    ctx = MetricContext(samples=texts, human=[])
    values: Dict[str, float] = {}
    for name in names:
        out = METRICS.spec(name).fn(ctx)
        values.update(out if isinstance(out, dict) else {name: out})
    return values, (compute_intervals(names, ctx, values) if with_intervals else {})


def coverage(names: Sequence[str] = LEXICAL, truth_sets: int = 300, interval_sets: int = 60, set_size: int = 64,
             doc_words: int = 48, seed: int = 0, population: List[str] = None) -> List[dict]:
    """One row per metric: target (mean over truth sets), true 95% range width, mean interval width, coverage."""
    pop = population if population is not None else kjv_population(doc_words)
    rng = np.random.default_rng(seed)
    draw = lambda: [pop[i] for i in rng.choice(len(pop), size=set_size, replace=False)]  # noqa: E731
    truth: Dict[str, List[float]] = {n: [] for n in names}
    for _ in range(truth_sets):
        values, _ = _score(names, draw(), False)
        for n in names:
            truth[n].append(values[n])
    hits: Dict[str, List[bool]] = {n: [] for n in names}
    widths: Dict[str, List[float]] = {n: [] for n in names}
    targets = {n: float(np.mean(truth[n])) for n in names}
    for _ in range(interval_sets):
        _, intervals = _score(names, draw(), True)
        for n in names:
            if n in intervals:
                lo, hi = intervals[n]
                hits[n].append(lo <= targets[n] <= hi)
                widths[n].append(hi - lo)
    rows = []
    for n in names:
        lo, hi = np.percentile(truth[n], [2.5, 97.5])
        rows.append({"metric": n, "target": targets[n], "true_width": float(hi - lo),
                     "width": float(np.mean(widths[n])) if widths[n] else float("nan"),
                     "coverage": float(np.mean(hits[n])) if hits[n] else float("nan"), "n": len(hits[n])})
    return rows


def markdown(rows: List[dict]) -> str:
    """The coverage table as markdown."""
    lines = ["| metric | target (mean over sets) | interval width (mean) | true central 95% range | coverage |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['metric']} | {r['target']:.4g} | {r['width']:.4g} | {r['true_width']:.4g} | "
                     f"{100 * r['coverage']:.0f}% ({r['n']}) |")
    return "\n".join(lines)
