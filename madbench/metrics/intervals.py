"""Estimator uncertainty: a 95% interval for every per-generation metric, from the data it was scored on.

This is how much a metric would move if the same model had produced a different set of
samples (or been scored on different held-out documents). It is not the seed variance
that ``madbench.reporting.stats`` and ``madbench sweep`` report; a researcher needs both.

- sample metrics (distinct-n, TTR, MTLD, Vendi, Fréchet, any plug-in metric with
  ``needs='samples'`` or ``'human'``): percentile bootstrap over the generation's samples.
  Resampling with replacement repeats samples, which shifts set metrics (distinct-n,
  duplicates, Vendi) by itself, so the bootstrap spread is re-centred on the measured value:
  interval = value + (percentile - bootstrap median). Embeddings are computed once and
  their rows resampled; pairwise cosine distance leaves out the pairs of a sample with its own copy.
- set metrics (distinct-n, compression ratio, duplicate rate) and self-BLEU: half-sampling, n // 2
  samples without replacement (``half_sample_interval``), so no sample is ever repeated; self-BLEU
  re-scores each half-sample against its own reference pool (``repetition.SelfBleuPool``).
  Coverage measured on real passages: ``scripts/calibrate.py``, docs/metrics.md "Calibration".
- every interval is clipped inside its metric's declared ``value_range`` (``clip_intervals``).
- MAUVE: ``MAUVE_REPLICATES`` runs, each with its own k-means seed and a bootstrap
  resample of the samples (quantisation and sampling noise together). APPROXIMATE: 8 replicates,
  the human side held fixed, coverage not measured (each replicate is a full MAUVE run).
- perplexity: bootstrap over held-out documents of exp(sum NLL / sum tokens).
- lm-eval task scores: value +/- 1.96 x lm-eval's own ``<metric>_stderr`` (``lmeval.task_intervals``).
- the generation-0 reference panel: ``tail.tail_intervals`` (bootstrap over samples and generation 0's samples)
  and ``rare.rare_intervals`` (bootstrap over held-out documents).

A plug-in metric is bootstrapped like the built-in ones (``RESAMPLES`` calls on resampled
samples); register it with ``interval_resamples=0`` to skip its interval, or a smaller count
when it is expensive: ``@METRICS.register("mine", needs="samples", interval_resamples=20)``.

Everything uses a fixed RNG seed, so intervals are deterministic; metric values are never
changed. Exercise with ``pytest tests/test_intervals.py``.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from madbench.metrics import METRICS, MetricContext

SEED = 1729  # fixed: the same data always gives the same interval
LEVEL = 0.95
RESAMPLES = 200  # default bootstrap replicates per metric
RESAMPLES_BY_METRIC = {"mtld": 100, "hdd": 50, "frechet_embedding_distance": 50, "vendi_score": 100}
MAUVE_REPLICATES = 8
# intervals whose measured (or unmeasured) coverage falls short of the 90-99% band: docs/metrics.md "Calibration"
APPROXIMATE = {"mauve": "8 replicates, human side fixed, coverage not measured",
               "compression_ratio": "coverage 80% at n=64 (scripts/calibrate.py)",
               "repetition_4gram": "coverage 85% at n=64 (scripts/calibrate.py)"}
SELF_BLEU_RESAMPLES = RESAMPLES  # each re-scores a half-sample from n-gram counts tabulated once (SelfBleuPool)
Interval = List[float]


def percentile_interval(values: Sequence[float], level: float = LEVEL) -> Optional[Interval]:
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(vals) < 2:
        return None
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return [float(lo), float(hi)]


def bootstrap_interval(stat: Callable[[np.ndarray], Optional[float]], n: int, value: Optional[float],
                       resamples: int = RESAMPLES, seed: int = SEED, recentre: bool = True) -> Optional[Interval]:
    """Percentile bootstrap of ``stat(indices)`` over ``resamples`` draws of n indices with replacement.

    ``recentre``: shift the bootstrap percentiles by (value - bootstrap median), so the interval holds
    the value even for statistics that resampling itself biases (duplicated samples).
    """
    if value is None or not math.isfinite(value) or n < 2 or resamples < 2:
        return None
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    stats = [stat(row) for row in draws]
    stats = [float(s) for s in stats if s is not None and math.isfinite(s)]
    bounds = percentile_interval(stats)
    if bounds is None:
        return None
    if recentre:
        shift = value - float(np.median(stats))
        bounds = [bounds[0] + shift, bounds[1] + shift]
    return [min(bounds[0], value), max(bounds[1], value)]


def half_sample_interval(stat: Callable[[np.ndarray], Optional[float]], n: int, value: Optional[float],
                         resamples: int = RESAMPLES, seed: int = SEED) -> Optional[Interval]:
    """Half-sampling: ``stat`` on ``resamples`` subsets of n // 2 distinct indices, spread re-centred on ``value``.

    A half-sample drawn without replacement has (to first order) the variance of the full-sample statistic,
    and never repeats a sample, so set metrics (distinct-n, self-BLEU's reference pool) see no artificial
    duplicates. Coverage measured with ``scripts/calibrate.py`` (docs/metrics.md).
    """
    if value is None or not math.isfinite(value) or n < 4 or resamples < 2:
        return None
    rng = np.random.default_rng(seed)
    stats = [stat(np.sort(rng.choice(n, size=n // 2, replace=False))) for _ in range(resamples)]
    bounds = percentile_interval([float(s) for s in stats if s is not None and math.isfinite(s)])
    if bounds is None:
        return None
    shift = value - float(np.median([s for s in stats if s is not None and math.isfinite(s)]))
    return [min(bounds[0] + shift, value), max(bounds[1] + shift, value)]


# set metrics whose interval comes from half-samples, not the duplicate-making bootstrap
HALF_SAMPLED = {*(f"distinct_{n}" for n in (1, 2, 3, 4)), "compression_ratio", "duplicate_rate"}


def _generic(name: str, ctx: MetricContext, values: Dict[str, Optional[float]]) -> Dict[str, Interval]:
    """Bootstrap any sample metric by re-running it on resampled samples (embeddings reused)."""
    spec = METRICS.spec(name)
    fn = spec.fn
    keys = ctx.cache.get("metric_keys", {}).get(name, [name])  # a family contributes several keys
    n = len(ctx.samples)
    embedded = ctx.cache.get("embeddings:samples")
    resamples = spec.interval_resamples if spec.interval_resamples is not None else RESAMPLES_BY_METRIC.get(name, RESAMPLES)
    memo: Dict[bytes, dict] = {}

    def run(idx: np.ndarray) -> dict:
        key = idx.tobytes()
        if key not in memo:
            cache = {} if embedded is None else {"embeddings:samples": embedded[idx]}
            sub = MetricContext(samples=[ctx.samples[i] for i in idx], human=ctx.human, tokenizer=ctx.tokenizer,
                                batch_size=ctx.batch_size, cache=cache)
            out = fn(sub)
            memo.clear()  # only the latest draw is reused (by the other keys of a family)
            memo[key] = out if isinstance(out, dict) else {name: out}
        return memo[key]

    out = {}
    for k in keys:
        try:
            scheme = half_sample_interval if name in HALF_SAMPLED else bootstrap_interval
            interval = scheme(lambda idx: run(idx).get(k), n, values.get(k), resamples)
        except Exception:  # a (plug-in) metric that cannot score a resample: its value stands, without interval
            interval = None
        if interval:
            out[k] = interval
    return out


def _self_bleu(ctx, values) -> Dict[str, Interval]:
    """Half-samples re-score self-BLEU with their own reference pool (the pool is what the score depends on)."""
    pool = ctx.cache.get("self_bleu:pool")  # repetition.SelfBleuPool, left by the metric on the same context
    if pool is None:
        return {}
    iv = half_sample_interval(pool.mean, pool.size, values.get("self_bleu"), SELF_BLEU_RESAMPLES)
    return {"self_bleu": iv} if iv else {}


def _pairwise(ctx, values) -> Dict[str, Interval]:
    from madbench.metrics.embeddings import sample_embeddings
    from madbench.metrics.semantic import _unit

    x = _unit(sample_embeddings(ctx))
    dist = 1.0 - x @ x.T

    def stat(idx):
        distinct = idx[:, None] != idx[None, :]  # a sample against its own copy is not a pair
        return float(dist[np.ix_(idx, idx)][distinct].mean()) if distinct.any() else None

    iv = bootstrap_interval(stat, len(x), values.get("pairwise_cosine_distance"))
    return {"pairwise_cosine_distance": iv} if iv else {}


def _mauve(ctx, values) -> Dict[str, Interval]:
    from madbench.metrics.embeddings import human_embeddings, sample_embeddings
    from madbench.metrics.shift import MAUVE_SEED, mauve_score

    value = values.get("mauve")
    p, q = sample_embeddings(ctx), human_embeddings(ctx.human)
    if value is None or len(p) < 2:
        return {}
    rng = np.random.default_rng(SEED)
    runs = [mauve_score(p[rng.integers(0, len(p), len(p))], q, seed=MAUVE_SEED + r + 1) for r in range(MAUVE_REPLICATES)]
    bounds = percentile_interval(runs)
    return {"mauve": [min(bounds[0], value), max(bounds[1], value)]} if bounds else {}


def _perplexity(ctx, values) -> Dict[str, Interval]:
    rows = ctx.cache.get("perplexity:rows") or []
    nll = np.asarray([r[0] for r in rows], dtype=float)
    count = np.asarray([r[1] for r in rows], dtype=float)

    def stat(idx):
        tokens = count[idx].sum()
        return math.exp(nll[idx].sum() / tokens) if tokens else None

    iv = bootstrap_interval(stat, len(rows), values.get("perplexity"))
    return {"perplexity": iv} if iv else {}


SPECIAL = {"self_bleu": _self_bleu, "pairwise_cosine_distance": _pairwise, "mauve": _mauve, "perplexity": _perplexity}


def compute_intervals(names, ctx: MetricContext, values: Dict[str, Optional[float]]) -> Dict[str, Interval]:
    """95% intervals for the metrics ``names`` already computed into ``values`` on ``ctx`` (same cache)."""
    out: Dict[str, Interval] = {}
    for name in names:
        if name in SPECIAL:
            out.update(SPECIAL[name](ctx, values))
        elif METRICS.spec(name).needs in ("samples", "human") and ctx.samples:
            out.update(_generic(name, ctx, values))
    return clip_intervals(out)


def clip_intervals(intervals: Dict[str, Sequence[float]]) -> Dict[str, Interval]:
    """Every interval clipped inside its metric's declared ``value_range`` (``MetricSpec``); unregistered keys
    (lm-eval task scores) pass unchanged. A re-centred or normal-approximation interval can cross a bound."""
    out = {}
    for key, interval in intervals.items():
        out[key] = METRICS.spec(key).clip(interval) if key in METRICS else [float(interval[0]), float(interval[1])]
    return out
