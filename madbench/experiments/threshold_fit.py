"""The threshold and its 95% confidence interval: a monotone fit over the real share, bootstrapped over seeds.

    from madbench.experiments.threshold_fit import threshold_interval
    threshold_interval([{"real_share": 0.2, "ratios_by_seed": {0: 1.09, 1: 1.07}}, ...], 0.05, higher_is_better=False)

``madbench threshold`` bisects to choose where to run points; the threshold itself comes from all of them.
At each point each seed's ratio last / generation 0 of the metric gives a margin (ratio - (1 + tolerance)
for a lower-is-better metric, (1 - tolerance) - ratio for a higher-is-better one; <= 0 means "holds").
The seed-mean margins, weighted by their seed counts, are fitted non-increasing in the share (isotonic
regression: more real data never hurts, and nothing else is assumed), and the threshold is where that fit
first reaches 0, linear between points. Its interval is a parametric bootstrap of the point means: each
is redrawn as mean + t * SD / sqrt(n), with the residual SD pooled over every point and t drawn with the
pooled degrees of freedom (with 2-3 seeds a point's own SD is too unsure, and a bootstrap over 3 seeds has
10 distinct draws), and the fit and crossing recomputed. A crossing above the searched range is ``inf``: an
interval whose upper end is inf says "above --high". Coverage, measured on a known dose-response through
the same bisection (``tests/test_threshold.py``; 100 searches): 91% with 3 seeds, 92% with 5 (a seed
bootstrap instead gave 70% and 85%); the rest is the straight line drawn between bisection points.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

RESAMPLES = 2000
SEED = 1729


def margin(ratio: float, tolerance: float, higher_is_better: Optional[bool]) -> float:
    """How far a ratio last / first is from the tolerance's edge; <= 0: the point holds."""
    return (1 - tolerance) - ratio if higher_is_better else ratio - (1 + tolerance)


def crossing(shares: Sequence[float], margins: Sequence[float], weights: Sequence[float]) -> float:
    """Smallest share where the non-increasing isotonic fit of ``margins`` reaches 0 (linear between points);
    the first share when it already holds there, inf when it never does."""
    from scipy.optimize import isotonic_regression

    fit = isotonic_regression(np.asarray(margins, float), weights=np.asarray(weights, float), increasing=False).x
    if fit[0] <= 0:
        return float(shares[0])
    for i in range(1, len(fit)):
        if fit[i] <= 0:
            s0, s1, f0, f1 = shares[i - 1], shares[i], fit[i - 1], fit[i]
            return float(s0 + (s1 - s0) * f0 / (f0 - f1))
    return math.inf


def threshold_interval(points: List[dict], tolerance: float, higher_is_better: Optional[bool],
                       resamples: int = RESAMPLES, seed: int = SEED, level: float = 0.95) -> dict:
    """{"estimate", "ci95" ([low, high], inf = above the searched range; None under 2 seeds), "seeds" (n),
    "residual_df", "method"} from points {"real_share", "ratios_by_seed": {seed: ratio}}."""
    points = sorted(points, key=lambda p: p["real_share"])
    shares = [p["real_share"] for p in points]
    by_point: List[dict] = [{s: margin(r, tolerance, higher_is_better) for s, r in p["ratios_by_seed"].items()
                             if r is not None and math.isfinite(r)} for p in points]
    seeds = {s for m in by_point for s in m}
    rows = [(share, list(m.values())) for share, m in zip(shares, by_point) if m]
    value = crossing([r[0] for r in rows], [sum(v) / len(v) for _, v in rows], [len(v) for _, v in rows]) if rows else None
    # the seed-mean margin at each point, redrawn around its value: residual SD pooled over every point (its
    # degrees of freedom add up), t-distributed draws (few seeds: the SD itself is uncertain)
    df = sum(len(v) - 1 for _, v in rows)
    ci = None
    if df >= 1 and len(seeds) > 1:
        pooled = math.sqrt(sum(sum((x - sum(v) / len(v)) ** 2 for x in v) for _, v in rows) / df)
        means = np.array([sum(v) / len(v) for _, v in rows])
        sizes = np.array([len(v) for _, v in rows], dtype=float)
        rng = np.random.default_rng(seed)
        noise = rng.standard_t(df, size=(resamples, len(rows))) * pooled / np.sqrt(sizes)
        boot = sorted(crossing([r[0] for r in rows], means + row, sizes) for row in noise)
        tail = (1 - level) / 2
        ci = [boot[int(math.floor(tail * (len(boot) - 1)))], boot[int(math.ceil((1 - tail) * (len(boot) - 1)))]]
    return {"estimate": value, "ci95": ci, "seeds": len(seeds), "residual_df": df,
            "method": f"isotonic fit of the seed-mean margin over the real share; parametric bootstrap of the "
                      f"point means (residual SD pooled over points, t with {df} df, {resamples} draws)"}


def trained_real_share(results: dict) -> Optional[float]:
    """Share of real documents in the training mixes actually used after generation 0, mean over chains and
    generations (with /accumulate the accumulated mix, so below loop.real_fraction)."""
    values = [1.0 - g["synthetic_fraction"] for c in results["chains"] for g in c["generations"]
              if g["generation"] >= 1 and isinstance(g.get("synthetic_fraction"), (int, float))]
    return sum(values) / len(values) if values else None
