"""Seed statistics: the one place where means, 95% intervals and comparisons are computed.

    from madbench.reporting.stats import aggregate_chains, compare
    groups = aggregate_chains(results["chains"])       # chains of one or several runs

``report``, ``sweep``, the leaderboard and ``regress`` all import this module, so
every number they show comes from the same definitions:

- mean and sample standard deviation (ddof=1) over seeds; None/NaN are dropped;
- a 95% Student-t interval ``mean +- t(0.975, n-1) * std / sqrt(n)`` (n == 1 gives
  the point itself, n == 0 gives None everywhere), clipped inside the metric's declared
  ``value_range`` (a share stays in [0, 1]);
- two groups are ``separated`` when each has 2 or more seeds, their 95% intervals do not
  overlap and the 95% Welch interval of the difference excludes 0 (one seed never is);
  Hedges' g (bias-corrected pooled-SD effect size), Welch's t-test p-value, and Holm's
  adjustment for a family of them (:func:`holm`, used by the sweep summary).

A group is a (regime, mode, mitigations) triple; its seeds may come from several
run folders (``madbench report RUN_A RUN_B`` pools them). Its statistical unit is the
independent experiment (:func:`unit_of`): a seed, or an ecosystem's base seed, whose
members share their mixes and are averaged first (their spread is ``member_std``).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

def _t975(df: int) -> float:
    from scipy.stats import t  # a dependency; imported on first use so that loading this module stays light

    return float(t.ppf(0.975, df))


def clean(values: Iterable) -> list[float]:
    """The finite float values of ``values`` (None, NaN and infinities dropped)."""
    out = []
    for v in values or []:
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v):
            out.append(v)
    return out


def fsum(values) -> float:
    """math.fsum, but a sum (or a square) past the float range is inf where math.fsum or ** raise OverflowError."""
    try:
        values = list(values)
        return math.fsum(values)
    except OverflowError:
        return math.inf if not isinstance(values, list) else sum(values)


def seed_summary(values: list[float], value_range: tuple = (None, None)) -> dict:
    """{"mean", "std", "n", "ci95_low", "ci95_high"} over seeds; None when no value is left.

    ``value_range``: the metric's (low, high) (``MetricSpec.value_range``; :func:`metric_range`); the t-interval
    is clipped inside it, so a share's interval stays in [0, 1] however few seeds."""
    xs = clean(values)
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "ci95_low": None, "ci95_high": None}
    mean = fsum(xs) / n
    if n == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "ci95_low": mean, "ci95_high": mean}
    std = math.sqrt(fsum((x - mean) ** 2 for x in xs) / (n - 1)) if math.isfinite(mean) else math.inf
    half = _t975(n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if value_range != (None, None) and math.isfinite(half):
        from madbench.metrics.specs import clip_to

        low, high = clip_to(value_range, [low, high])
    return {"mean": mean, "std": std, "n": n, "ci95_low": low, "ci95_high": high}


def metric_range(name: str) -> tuple:
    """The (low, high) a registered metric declares (``MetricSpec.value_range``); (None, None) for any other key."""
    from madbench.metrics import METRICS

    return METRICS.spec(name).value_range if name in METRICS else (None, None)


def group_key(chain: dict) -> tuple:
    """(regime, mode, tuple(mitigations)) of a results.json chain entry."""
    return (chain["regime"], chain["mode"], tuple(chain.get("mitigations") or ()))


def group_label(key: tuple) -> str:
    """'regime/mode' plus '+mitigation' for each mitigation, e.g. 'fully_synthetic/replace+dedup'."""
    regime, mode, mitigations = key
    return f"{regime}/{mode}" + "".join(f"+{m}" for m in mitigations)


def unit_of(chain: dict):
    """The independent experiment a chain belongs to: its seed, or for an ecosystem member its base seed.

    The members of one ecosystem and base seed train on the same shared mixes (identical ``mix.json``), so they
    are one statistical unit, not several seeds; group statistics average them first."""
    seed = chain.get("seed")
    if chain.get("regime") == "ecosystem" and isinstance(seed, int):
        from madbench.loop.ecosystem import base_seed

        return base_seed(seed)
    return seed


def unit_label(chains: list[dict]) -> str:
    """What ``n`` counts for these chains: 'seeds', or 'base seeds' when ecosystem members were averaged."""
    return "base seeds" if any(unit_of(c) != c.get("seed") for c in chains) else "seeds"


def unit_summary(pairs: list[tuple], value_range: tuple = (None, None)) -> dict:
    """:func:`seed_summary` over units, from (unit, value) pairs: each unit's values (an ecosystem's members)
    averaged first, so ``n`` counts independent experiments. Where a unit has several values, ``members``
    (how many values in all) and ``member_std`` (the pooled within-unit SD: the member spread, not seed noise)
    are added."""
    by_unit: dict = {}
    for unit, value in pairs:
        xs = clean([value])
        if xs:
            by_unit.setdefault(unit, []).append(xs[0])
    out = seed_summary([fsum(xs) / len(xs) for xs in by_unit.values()], value_range)
    if any(len(xs) > 1 for xs in by_unit.values()):
        spread = [(fsum((x - fsum(xs) / len(xs)) ** 2 for x in xs), len(xs) - 1) for xs in by_unit.values() if len(xs) > 1]
        out["members"] = sum(len(xs) for xs in by_unit.values())
        out["member_std"] = math.sqrt(fsum(ss for ss, _ in spread) / sum(df for _, df in spread))
    return out


def aggregate_chains(chains: list[dict]) -> list[dict]:
    """Group chain entries by :func:`group_key` (first-seen order) and summarise every metric over units.

    A unit is an independent experiment (:func:`unit_of`): a seed, or one ecosystem's base seed with its
    members averaged. Each group: {"regime", "mode", "mitigations", "seeds", "units", "n_counts" ('seeds' or
    'base seeds'), "chains" (ids), "label", "metrics": {metric: [{"generation": g, **unit_summary}, ...]}} with
    one entry per generation that at least one unit reached (``n`` says how many did).
    """
    groups: dict[tuple, list[dict]] = {}
    for chain in chains:
        groups.setdefault(group_key(chain), []).append(chain)
    out = []
    for key, members in groups.items():
        per_metric: dict[str, dict[int, list]] = {}
        for chain in members:
            for gen in chain.get("generations") or []:
                for name, value in (gen.get("metrics") or {}).items():
                    per_metric.setdefault(name, {}).setdefault(int(gen["generation"]), []).append((unit_of(chain), value))
        metrics = {}
        for name in sorted(per_metric):
            bounds = metric_range(name)
            rows = [{"generation": g, **unit_summary(pairs, bounds)} for g, pairs in sorted(per_metric[name].items())]
            metrics[name] = [r for r in rows if r["n"] > 0]
        out.append({
            "regime": key[0], "mode": key[1], "mitigations": list(key[2]),
            "seeds": [c.get("seed") for c in members], "units": list(dict.fromkeys(unit_of(c) for c in members)),
            "n_counts": unit_label(members), "chains": [c.get("id") for c in members],
            "label": group_label(key), "metrics": metrics,
        })
    return out


def hedges_g(a: list[float], b: list[float]) -> float | None:
    """Bias-corrected standardised mean difference (b - a) / pooled SD; None when undefined."""
    a, b = clean(a), clean(b)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    ma, mb = fsum(a) / na, fsum(b) / nb
    ssa = fsum((x - ma) ** 2 for x in a)
    ssb = fsum((x - mb) ** 2 for x in b)
    pooled = math.sqrt((ssa + ssb) / (na + nb - 2))
    if pooled == 0:
        return None
    correction = 1 - 3 / (4 * (na + nb) - 9)
    return (mb - ma) / pooled * correction


def _welch(a: list[float], b: list[float]):
    """scipy's Welch t-test of a against b; its "nearly identical values" RuntimeWarning (chains sharing
    generation 0) is silenced: the result stands, and callers drop what is not finite."""
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ttest_ind(a, b, equal_var=False)


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value; None with fewer than 2 values a side or zero variance."""
    a, b = clean(a), clean(b)
    if len(a) < 2 or len(b) < 2:
        return None
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return None
    p = float(_welch(a, b).pvalue)
    return p if math.isfinite(p) else None


def permutation_p(a: list[float], b: list[float], log: bool = True, resamples: int = 100_000) -> float | None:
    """Two-sided permutation p-value (scipy.stats.permutation_test) for a difference between the means of
    a and b: of their logs when ``log`` and every value is positive, so the shift tested is relative.

    Distribution-free: under the null (both groups' values are exchangeable draws of one distribution)
    rejecting at p < alpha happens with probability at most alpha. Exact when every split of the pooled
    values fits in ``resamples`` (8 + 8 values: 12,870), else Monte Carlo with a fixed seed.
    None with fewer than 2 values a side."""
    import numpy as np
    from scipy.stats import permutation_test

    a, b = clean(a), clean(b)
    if len(a) < 2 or len(b) < 2:
        return None
    x, y = np.array(a), np.array(b)
    if log and min(a + b) > 0:
        x, y = np.log(x), np.log(y)
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    result = permutation_test((x, y), lambda u, v, axis: np.mean(v, axis=axis) - np.mean(u, axis=axis),
                              permutation_type="independent", alternative="two-sided", n_resamples=resamples,
                              vectorized=True, rng=0)
    return float(result.pvalue)


def relative_shift(a: list[float], b: list[float]) -> float | None:
    """How far b sits from a, relative: the ratio of geometric means minus 1 (of arithmetic means where
    a value is not positive)."""
    a, b = clean(a), clean(b)
    if not a or not b:
        return None
    if min(a + b) > 0:
        return math.exp(math.fsum(map(math.log, b)) / len(b) - math.fsum(map(math.log, a)) / len(a)) - 1
    ma = fsum(a) / len(a)
    return (fsum(b) / len(b) - ma) / abs(ma) if ma else None


def welch_interval(a: list[float], b: list[float]) -> list[float] | None:
    """95% Welch interval of mean(b) - mean(a); None with fewer than 2 values a side or zero variance."""
    a, b = clean(a), clean(b)
    if len(a) < 2 or len(b) < 2 or (len(set(a)) == 1 and len(set(b)) == 1):
        return None
    ci = _welch(b, a).confidence_interval(0.95)
    return [float(ci.low), float(ci.high)] if math.isfinite(ci.low) and math.isfinite(ci.high) else None


def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of a family of p-values (None stays None): the adjusted p's are compared
    with the level itself and control the family-wise error rate (Holm 1979)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, out, running = len(order), list(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def compare(a: list[float], b: list[float], higher_is_better: bool | None) -> dict:
    """How b (e.g. a mitigation) differs from a (e.g. the baseline) on one metric.

    ``separated``: at least 2 values a side, the two 95% t-intervals do not overlap, and the 95% Welch
    interval of the difference (``diff_ci95``) excludes 0. One seed is never separated (its interval is
    the point itself); with 2 seeds the t multiplier is 12.7, so it takes a large, stable difference.
    ``better``: b's mean lies on the good side of a's (None when the metric has no direction); it says
    nothing about significance, so combine it with ``separated`` or ``welch_p``. A family of comparisons
    adjusts ``welch_p`` with :func:`holm` (``madbench sweep``'s summary does).
    """
    sa, sb = seed_summary(a), seed_summary(b)
    if sa["n"] == 0 or sb["n"] == 0:
        return {"diff": None, "diff_ci95": None, "hedges_g": None, "welch_p": None, "separated": False, "better": None,
                "a": sa, "b": sb}
    diff = sb["mean"] - sa["mean"]
    apart = sb["ci95_low"] > sa["ci95_high"] or sb["ci95_high"] < sa["ci95_low"]
    interval = welch_interval(a, b)
    separated = min(sa["n"], sb["n"]) >= 2 and apart and (interval is None or interval[0] > 0 or interval[1] < 0)
    better = None if higher_is_better is None else (diff > 0 if higher_is_better else diff < 0)
    return {"diff": diff, "diff_ci95": interval, "hedges_g": hedges_g(a, b), "welch_p": welch_p(a, b),
            "separated": bool(separated), "better": better, "a": sa, "b": sb}


def last_generation_table(results: list[dict] | dict, metrics: list[str]) -> list[dict]:
    """One row per group of all chains in ``results`` (one results.json dict or several, pooled).

    Row: {"label", "regime", "mode", "mitigations", "seeds", "units", "n_counts", "generation" (the
    group's last generation reached by any seed), "metrics": {metric: {"generation", mean, std,
    n, ci95_low, ci95_high[, members, member_std]}}} (n counts units: :func:`aggregate_chains`). A metric is summarised at the last generation where it
    has a value; a metric the group never measured gets seed_summary([]) (all None).
    """
    chains = _chains_of(results)
    rows = []
    for group in aggregate_chains(chains):
        last = max((g["generation"] for c in chains if group_key(c) == _key(group) for g in c.get("generations") or []),
                   default=None)
        cells = {}
        for name in metrics:
            series = group["metrics"].get(name) or []
            cells[name] = dict(series[-1]) if series else {"generation": None, **seed_summary([])}
        rows.append({"label": group["label"], "regime": group["regime"], "mode": group["mode"],
                     "mitigations": group["mitigations"], "seeds": group["seeds"], "units": group["units"],
                     "n_counts": group["n_counts"], "generation": last, "metrics": cells})
    return rows


def _key(group: dict) -> tuple:
    return (group["regime"], group["mode"], tuple(group["mitigations"]))


def _chains_of(results: list[dict] | dict) -> list[dict]:
    if isinstance(results, dict):
        results = [results]
    return [c for r in results for c in r.get("chains") or []]
