"""Verdicts with power: a family of paired comparisons over seeds, Holm-adjusted, with an equivalence test.

    from madbench.reporting.verdicts import judge
    judge([{"name": "a", "diffs": {0: 1.9, 1: 2.1, 2: 2.0}, "direction": "greater", "margin": 0.5}])
    madbench report runs/shumailov2024          # a protocol preset's declared comparisons, judged by these rules

Pure functions (numpy and scipy only). The unit is a seed: arms that share a seed are paired, and each
comparison is the one-sample t over its per-seed differences ``d_s``. For a family of m comparisons:

- **Holm's step-down** (Holm 1979) on the two-sided paired-t p-values: sorted p_(1) <= ... <= p_(m), the
  j-th is rejected while ``p_(j) <= alpha / (m - j + 1)``; the adjusted p-value is the running maximum of
  ``(m - j + 1) p_(j)``, rejected iff <= alpha.
- **Adjusted intervals**: each comparison's t-interval is drawn at the Holm-adjusted alpha of its step,
  ``1 - alpha / (m - j + 1)`` for the rejected ones, and for every comparison from the first one not
  rejected on, the level of that first step. So an adjusted interval excludes 0 exactly when Holm rejects
  (a p-value and a t-interval of the same test agree); it is Holm's level per comparison, not a
  simultaneous interval with exact joint coverage.
- **TOST** (two one-sided tests, Schuirmann 1987) against ``+-margin`` (an absolute bound; margin <= 0
  refused): p = max of the two one-sided p-values, Holm-adjusted over the family like the others;
  equivalent when the adjusted p <= alpha.

The verdict words, in this order: ``reproduced`` when Holm rejects and the mean lies in the paper's
direction; ``opposite`` when Holm rejects the other way; ``no effect`` when TOST says equivalent; else
``not resolved at N seeds``, with ``seeds_needed``: the fewest seeds at which, with the measured mean and
spread taken as true, either the paired t would exclude 0 or TOST would show equivalence with the stated
``power`` (80% unless told), at the family's strictest Holm level ``alpha / m`` (exact noncentral-t power
for the t; the usual lower bound ``P(A) + P(B) - 1`` for TOST). A trend claim's per-seed quantity is
:func:`slope` over generations >= 1, reported beside the level.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from madbench.errors import MadbenchError

ALPHA = 0.05
POWER = 0.8
MOST_SEEDS = 1000  # seeds_needed above this is reported as "more than 1000"


def paired(treatment: Dict, control: Optional[Dict]) -> Dict:
    """{seed: treatment - control} over the seeds both have (non-finite values dropped); ``control`` None
    gives the treatment's own values (a quantity tested against 0)."""
    out = {}
    for seed, t in treatment.items():
        c = 0.0 if control is None else control.get(seed)
        if _finite(t) and _finite(c):
            out[seed] = float(t) - float(c)
    return out


def slope(by_generation: Dict[int, float], first: int = 1) -> Optional[float]:
    """Least-squares slope per generation over generations >= ``first`` (2 points: last minus first, divided by
    their distance); None with fewer than 2 such generations."""
    points = sorted((g, v) for g, v in by_generation.items() if g >= first and _finite(v))
    if len(points) < 2:
        return None
    gs = [float(g) for g, _ in points]
    vs = [float(v) for _, v in points]
    mg, mv = math.fsum(gs) / len(gs), math.fsum(vs) / len(vs)
    return math.fsum((g - mg) * (v - mv) for g, v in zip(gs, vs)) / math.fsum((g - mg) ** 2 for g in gs)


def t_test(diffs: Sequence[float]) -> dict:
    """{"n", "mean", "sd", "se", "p"}: the two-sided one-sample t-test of mean 0 (p None with n < 2; with zero
    spread p is 0 for a non-zero mean, 1 for zero)."""
    from scipy.stats import t

    xs = [float(d) for d in diffs if _finite(d)]
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "se": None, "p": None}
    mean = math.fsum(xs) / n
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "se": None, "p": None}
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    se = sd / math.sqrt(n)
    p = (0.0 if mean != 0 else 1.0) if se == 0 else float(2 * t.sf(abs(mean) / se, n - 1))
    return {"n": n, "mean": mean, "sd": sd, "se": se, "p": p}


def interval(test: dict, alpha: float) -> Optional[List[float]]:
    """The two-sided (1 - alpha) t-interval of the mean; None with n < 2."""
    from scipy.stats import t

    if test["se"] is None:
        return None
    half = float(t.ppf(1 - alpha / 2, test["n"] - 1)) * test["se"]
    return [test["mean"] - half, test["mean"] + half]


def tost_p(test: dict, margin: float) -> Optional[float]:
    """TOST p-value for |mean| < margin (the larger of the two one-sided t p-values); None with n < 2."""
    from scipy.stats import t

    check_margin(margin)
    if test["se"] is None:
        return None
    if test["se"] == 0:
        return 0.0 if abs(test["mean"]) < margin else 1.0
    df = test["n"] - 1
    lower = float(t.sf((test["mean"] + margin) / test["se"], df))   # H0: mean <= -margin
    upper = float(t.cdf((test["mean"] - margin) / test["se"], df))  # H0: mean >= +margin
    return max(lower, upper)


def check_margin(margin) -> None:
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not margin > 0:
        raise MadbenchError(f"an equivalence margin must be above 0, not {margin!r}")


def holm(pvalues: Sequence[Optional[float]], alpha: float = ALPHA) -> tuple:
    """(adjusted p-values, the alpha of each comparison's interval): Holm's step-down (module docstring).
    A None p-value (fewer than 2 seeds) stays None, counts in m and is never rejected."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: (pvalues[i] is None, pvalues[i] if pvalues[i] is not None else 1.0))
    adjusted: List[Optional[float]] = [None] * m
    levels = [alpha / m if m else alpha] * m
    running, stopped = 0.0, None
    for j, i in enumerate(order):
        p = pvalues[i]
        level = alpha / (m - j)
        if stopped is None and (p is None or p > level):
            stopped = level
        levels[i] = level if stopped is None else stopped
        if p is not None:
            running = max(running, min(1.0, (m - j) * p))
            adjusted[i] = running
    return adjusted, levels


def t_power(effect: float, sd: float, n: int, alpha: float) -> float:
    """Exact power of the two-sided paired t at n seeds (noncentral t) when the true mean is ``effect``."""
    from scipy.stats import t

    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if effect != 0 else alpha
    df, crit, nc = n - 1, float(t.ppf(1 - alpha / 2, n - 1)), abs(effect) * math.sqrt(n) / sd
    return _nct_sf(crit, df, nc) + _nct_sf(crit, df, -nc)


def _nct_sf(x: float, df: int, nc: float) -> float:
    """P(T > x) for a noncentral t; scipy's nct gives NaN far in a tail, where the normal approximation holds."""
    from scipy.stats import nct, norm

    p = float(nct.sf(x, df, nc))
    return p if math.isfinite(p) else float(norm.sf(x - nc))


def tost_power(effect: float, sd: float, n: int, alpha: float, margin: float) -> float:
    """Power of TOST at n seeds when the true mean is ``effect`` (|effect| < margin), by the lower bound
    P(A) + P(B) - 1 of the two one-sided rejections (noncentral t each), clipped at 0."""
    from scipy.stats import t

    if n < 2 or abs(effect) >= margin:
        return 0.0
    if sd == 0:
        return 1.0
    df, crit = n - 1, float(t.ppf(1 - alpha, n - 1))
    a = _nct_sf(crit, df, (margin + effect) * math.sqrt(n) / sd)
    b = _nct_sf(crit, df, (margin - effect) * math.sqrt(n) / sd)
    return max(0.0, a + b - 1)


def seeds_needed(mean: float, sd: float, alpha: float, power: float = POWER, margin: Optional[float] = None,
                 most: int = MOST_SEEDS) -> Optional[int]:
    """The fewest seeds (>= 2) at which, were ``mean`` and ``sd`` the truth, the paired t would exclude 0 or (with a
    margin and |mean| < margin) TOST would show equivalence, each with probability ``power``; ``most + 1`` when
    even ``most`` would not do; None without a spread (fewer than 2 seeds)."""
    if mean is None or sd is None or not _finite(sd):
        return None
    found = _first(lambda n: t_power(mean, sd, n, alpha) >= power, most)
    if margin is not None and abs(mean) < margin:
        found = min(found, _first(lambda n: tost_power(mean, sd, n, alpha, margin) >= power, most))
    return found


def _first(enough, most: int) -> int:
    """The smallest n in [2, most] with ``enough(n)`` (power grows with n, so a bisection), else most + 1."""
    if not enough(most):
        return most + 1
    low, high = 1, most  # enough(low) is False (n = 1 has no test), enough(high) is True
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def judge(family: List[dict], alpha: float = ALPHA, power: float = POWER) -> List[dict]:
    """Verdicts for a family of comparisons, each {"name", "diffs": {seed: d}, "direction": "greater"|"less",
    "margin": absolute bound > 0}; returns, in the same order, the input plus {"n", "mean", "sd", "p",
    "p_holm", "alpha_holm", "ci_holm", "tost_p", "tost_p_holm", "verdict", "seeds_needed", "power", "alpha",
    "m" (the family's size)}."""
    tests = []
    for c in family:
        check_margin(c["margin"])
        tests.append(t_test(list(c["diffs"].values())))
    p_holm, levels = holm([t["p"] for t in tests], alpha)
    tost = [tost_p(t, c["margin"]) for t, c in zip(tests, family)]
    tost_holm, _ = holm(tost, alpha)
    out = []
    for c, t, ph, level, tp, tph in zip(family, tests, p_holm, levels, tost, tost_holm):
        sign = 1 if c["direction"] == "greater" else -1
        needed = None
        if ph is not None and ph <= alpha:
            word = "reproduced" if sign * t["mean"] > 0 else "opposite"
        elif tph is not None and tph <= alpha:
            word = "no effect"
        else:
            needed = seeds_needed(t["mean"], t["sd"], alpha / max(1, len(family)), power, c["margin"])
            word = f"not resolved at {t['n']} seed{'s' * (t['n'] != 1)}"
        out.append({**c, "n": t["n"], "mean": t["mean"], "sd": t["sd"], "p": t["p"], "p_holm": ph,
                    "alpha_holm": level, "ci_holm": interval(t, level), "tost_p": tp, "tost_p_holm": tph,
                    "verdict": word, "seeds_needed": needed, "power": power, "alpha": alpha, "m": len(family)})
    return out


def needed_text(v: dict) -> str:
    """'; 7 seeds would resolve it (80% power, alpha 0.05/3)' for an unresolved verdict, else ''."""
    n = v.get("seeds_needed")
    if n is None:
        return "; 2 seeds or more are needed to measure a spread" if v["verdict"].startswith("not resolved") else ""
    count = f"more than {MOST_SEEDS}" if n > MOST_SEEDS else str(n)
    return f"; {count} seeds would resolve it at the measured spread ({v['power']:.0%} power, alpha {v['alpha']:g}/{v['m']})"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
