"""Tiers within a track: mitigations that the seeds cannot tell apart share a tier.

    from madbench.leaderboard.tiers import assign_tiers, paired_effect
    rows = assign_tiers(rows, higher_is_better=False)     # each row: {"label", "per_seed": {seed: effect %}, ...}
    madbench leaderboard build                            # the track tables show the tiers

The rule (printed on the site and in docs/leaderboard.md):

1. A mitigation's effect in one seed is ``100 * (m_s - b_s) / |b_s|``: its value of the track's
   metric at the last generation against the unmitigated baseline chain of the same run and seed.
2. The best mitigation is the one with the best mean effect. Every other mitigation's per-seed
   difference to it, ``d_s = e_s - e_best,s`` (paired by seed: a track fixes the seeds), gets a
   two-sided paired t-test (Welch's test when the seeds do not pair).
3. Holm's step-down over those comparisons keeps the chance of any false separation at 5%: sort the
   p-values, reject the j-th smallest of m while ``p <= 0.05 / (m - j + 1)``, stop at the first
   that is not rejected. A mitigation whose difference is not rejected shares the best one's tier.
4. The separated ones are tiered again the same way (tier 2 around the best of the rest, and so on).

With one seed nothing can be separated: every mitigation shares tier 1. Mitigations over the track's
human-data budget are tiered apart, after those within it.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from madbench.reporting import stats

ALPHA = 0.05  # family-wise error rate of one tiering step (Holm over its comparisons)

RULE = ("Tiers: a mitigation's per-seed effect (last generation, against the baseline chain of the same run and "
        "seed) is compared with the best mitigation's by a paired t-test over seeds; Holm's step-down over these "
        "comparisons keeps the family-wise error at 5%. Those not separated from the best share its tier; the rest "
        "are tiered again around the best of them. With one seed nothing separates.")


def paired_effect(mitigated: Dict[int, float], baseline: Dict[int, float]) -> Dict[int, float]:
    """{seed: 100 * (m - b) / |b|} over the seeds both have (a zero or missing baseline drops the seed)."""
    out = {}
    for seed, m in mitigated.items():
        b = baseline.get(seed)
        if _finite(m) and _finite(b) and b != 0:
            out[seed] = 100.0 * (m - b) / abs(b)
    return out


def effect_summary(per_seed: Dict[int, float], higher_is_better: Optional[bool]) -> dict:
    """Mean effect (%) with its 95% t interval over seeds; ``separated``: the interval excludes 0;
    ``better``: the mean is on the metric's good side (None without a direction)."""
    s = stats.seed_summary(list(per_seed.values()))
    if s["mean"] is None:
        return {"effect_pct": None, "ci95_pct": (None, None), "n": 0, "separated": False, "better": None}
    separated = s["n"] > 1 and (s["ci95_low"] > 0 or s["ci95_high"] < 0)
    better = None if higher_is_better is None or s["mean"] == 0 else (s["mean"] > 0) == bool(higher_is_better)
    return {"effect_pct": s["mean"], "ci95_pct": (s["ci95_low"], s["ci95_high"]), "n": s["n"],
            "separated": bool(separated), "better": better}


def difference_p(a: Dict[int, float], b: Dict[int, float]) -> Optional[float]:
    """Two-sided p-value that the mean effects of ``a`` and ``b`` differ: paired by seed when at least two
    seeds are shared, else Welch's test; None when no test is possible (one seed)."""
    shared = sorted(set(a) & set(b))
    if len(shared) >= 2 and len(shared) == len(a) == len(b):
        diffs = [a[s] - b[s] for s in shared]
        mean = math.fsum(diffs) / len(diffs)
        sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        if sd == 0:
            return 1.0 if mean == 0 else 0.0
        from scipy.stats import t

        return float(2 * t.sf(abs(mean) / (sd / math.sqrt(len(diffs))), len(diffs) - 1))
    return stats.welch_p(list(a.values()), list(b.values()))


def seeds_for_power(per_seed: Dict[int, float], power: float = 0.8, alpha: float = ALPHA, most: int = 1000,
                    effect: Optional[float] = None) -> Optional[int]:
    """How many seeds a track needs for its paired 95% interval to exclude 0 with probability ``power``, if the
    effect and its seed-to-seed spread are what ``per_seed`` measured: the smallest n >= 2 with
    ``t(1-alpha/2, n-1) + t(power, n-1) <= |effect| sqrt(n) / sd`` (the usual t approximation of the paired
    t-test's power; d = 1 gives 10, as the exact noncentral t does). ``effect`` defaults to the measured mean,
    which is optimistic (the seeds that estimate it also make it look clear); ``conservative_seeds_for_power``
    asks for the interval's end nearer 0 instead. None with under 2 seeds or no effect; ``most + 1`` when even
    ``most`` seeds would not do."""
    s = stats.seed_summary([v for v in per_seed.values() if _finite(v)])
    effect = s["mean"] if effect is None else effect
    if s["n"] < 2 or effect == 0:
        return None
    if s["std"] == 0:
        return 2
    from scipy.stats import t

    d = abs(effect) / s["std"]
    for n in range(2, most + 1):
        if t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1) <= d * math.sqrt(n):
            return n
    return most + 1


def conservative_seeds_for_power(per_seed: Dict[int, float], power: float = 0.8, alpha: float = ALPHA,
                                 most: int = 1000) -> Optional[int]:
    """``seeds_for_power`` for the smallest effect the 95% seed interval keeps (its end nearer 0), at the measured
    spread: the count that does not lean on the estimate's luck. None when the interval holds 0 (no effect is
    assured) or with under 2 seeds."""
    values = [v for v in per_seed.values() if _finite(v)]
    s = stats.seed_summary(values)
    if s["n"] < 2 or not (s["ci95_low"] > 0 or s["ci95_high"] < 0):
        return None
    near = min(s["ci95_low"], s["ci95_high"], key=abs)
    return seeds_for_power(per_seed, power, alpha, most, effect=near)


def holm_rejects(pvalues: Sequence[Optional[float]], alpha: float = ALPHA) -> List[bool]:
    """Holm's step-down: which hypotheses are rejected (a None p-value is never rejected and counts in m)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: (pvalues[i] is None, pvalues[i] if pvalues[i] is not None else 1.0))
    rejected = [False] * m
    for j, i in enumerate(order):
        p = pvalues[i]
        if p is None or p > alpha / (m - j):
            break
        rejected[i] = True
    return rejected


def assign_tiers(rows: List[dict], higher_is_better: bool, first_tier: int = 1) -> List[dict]:
    """Set ``tier`` (from ``first_tier``), ``tier_best`` (the label it was compared with) and ``vs_best_p``
    (Holm-compared p-value, None for the best itself) on rows that carry ``per_seed`` {seed: effect %};
    return them best tier first, by mean effect within a tier. A row without effects comes last, untiered."""
    sign = 1 if higher_is_better else -1
    mean = lambda r: stats.seed_summary(list(r["per_seed"].values()))["mean"]  # noqa: E731
    left = [r for r in rows if r["per_seed"]]
    out, tier = [], first_tier
    while left:
        left.sort(key=lambda r: -sign * mean(r))
        best, rest = left[0], left[1:]
        ps = [difference_p(r["per_seed"], best["per_seed"]) for r in rest]
        rejected = holm_rejects(ps)
        best.update(tier=tier, tier_best=best["label"], vs_best_p=None)
        same = [best]
        for r, p, rej in zip(rest, ps, rejected):
            if not rej:
                r.update(tier=tier, tier_best=best["label"], vs_best_p=p)
                same.append(r)
        out.extend(same)
        left = [r for r, rej in zip(rest, rejected) if rej]
        tier += 1
    for r in rows:
        if not r["per_seed"]:
            r.update(tier=None, tier_best=None, vs_best_p=None)
            out.append(r)
    return out


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
