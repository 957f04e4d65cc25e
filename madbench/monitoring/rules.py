"""Alarm rules: given a chain's panel, the first generation at which the rule alarms, or None.

    madbench list monitor_rules                       # cusum_<indicator> per leading indicator, any_leading(_10pct), baselines
    madbench monitor runs/smoke --rule cusum_distinct_2 --alpha 0.05

``cusum_<metric>``: a one-sided CUSUM (Page 1954) of the indicator's standardised change from
generation 0 (madbench/monitoring/panel.py), S_g = max(0, S_{g-1} + z_g - k) with k = 0.5 (tuned to a
shift of one standard error), alarming when S_g > h. ``h`` is set so that a chain whose indicator does
not move alarms with probability ``alpha`` within the run's horizon of G generations: it is the
(1 - alpha) quantile of max_g S_g under that null, simulated (20,000 chains, fixed seed) with
z_g = (e_g - e_0) / sqrt(2), e ~ N(0, 1), since every generation is compared with the same generation 0.
That makes alpha a per-chain false-alarm rate over the whole run, exact when the intervals are
correct 95% intervals and the metric is stationary; ``tests/test_monitoring.py`` measures it.

``any_leading``: every leading indicator the panel has, each CUSUM at alpha / m (Bonferroni, valid under
any dependence between indicators, and conservative because distinct-1..4 move together); it alarms
when the first of them does.

``any_leading_10pct``: the same, counting only the part of a change beyond 10% of generation 0's value
(the null is then "moved less than 10%", so its false-alarm rate on a stationary chain is below alpha).

A scale from few seeds (a submission: the sd of generation 0 over n seeds, ``panel.attach_seed_noise``) is
itself noisy, and a z over it has heavier tails than a normal's: with h from the normal null a nominal
alpha of 0.05 fires on 0.13 of stationary chains at 3 seeds. There ``h`` comes from the same simulation
with the scale estimated as the panel estimates it (the sd of n seeds' generation 0, the chain's own among
them: ``cusum_threshold_seeds``), so alpha holds at the submission's seed count.

Baselines every score is read against (``madbench monitor --score`` always scores them): ``always_g1``
alarms at generation 1 on every chain (its lead is onset - 1 by construction), ``never`` never alarms.

Your own rule is a plug-in: an object (or a class building with no arguments) with ``needs`` (the
metrics it reads) and ``first_alarm(panel, alpha) -> Alarm | None``::

    from madbench.monitoring import MONITOR_RULES, Alarm

    @MONITOR_RULES.register("ttr_drop")
    class TtrDrop:
        needs = ("type_token_ratio",)
        def first_alarm(self, panel, alpha):
            x = [v["type_token_ratio"] for v in panel.values]
            g = next((g for g in range(1, len(x)) if x[g] < 0.8 * x[0]), None)
            return None if g is None else Alarm("ttr_drop", g, "type_token_ratio", x[g] / x[0], 0.8)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np

from madbench.errors import MadbenchError
from madbench.monitoring.panel import LEADING, Alarm, ChainPanel

SEED = 31
DRAWS = 20000
K = 0.5
# any_leading_10pct: a change must also exceed 10% of generation 0's value, the relative size of the lagging
# signal's (perplexity +10%), fixed before any chain was scored (not tuned on them)
MARGIN = 0.10


@lru_cache(maxsize=512)
def cusum_threshold(alpha: float, horizon: int, k: float = K, draws: int = DRAWS) -> float:
    """h with P(max_{g<=horizon} S_g > h) = alpha for a stationary indicator compared with one generation 0."""
    if not 0 < alpha < 1:
        raise MadbenchError(f"the false-alarm rate alpha must be between 0 and 1, got {alpha}")
    rng = np.random.default_rng(SEED)
    e = rng.standard_normal((draws, max(horizon, 1) + 1))
    z = (e[:, 1:] - e[:, :1]) / math.sqrt(2)
    return _cusum_quantile(z, k, alpha)


def _cusum_quantile(z: "np.ndarray", k: float, alpha: float) -> float:
    """The 1 - alpha quantile over draws (rows of ``z``) of the CUSUM's maximum over generations (columns)."""
    s = np.zeros(z.shape[0])
    top = np.zeros(z.shape[0])
    for g in range(z.shape[1]):
        s = np.maximum(0.0, s + z[:, g] - k)
        top = np.maximum(top, s)
    return float(np.quantile(top, 1 - alpha))


@lru_cache(maxsize=512)
def cusum_threshold_seeds(alpha: float, horizon: int, seeds: int, k: float = K, draws: int = DRAWS) -> float:
    """h for a chain whose scale is the sd of generation 0 over ``seeds`` seeds (its own among them), so that
    P(max_g S_g > h) = alpha for a stationary indicator: the noisy scale is simulated, not taken as known."""
    if not 0 < alpha < 1:
        raise MadbenchError(f"the false-alarm rate alpha must be between 0 and 1, got {alpha}")
    if seeds < 2:
        raise MadbenchError(f"a scale from the spread over seeds needs at least 2 seeds, got {seeds}")
    rng = np.random.default_rng(SEED)
    g0 = rng.standard_normal((draws, seeds))  # every seed's generation 0; the chain is seed 0
    sd = g0.std(axis=1, ddof=1)
    e = rng.standard_normal((draws, max(horizon, 1)))
    z = (e - g0[:, :1]) / (math.sqrt(2) * sd[:, None])
    return _cusum_quantile(z, k, alpha)


def threshold_for(panel: ChainPanel, metric: str, alpha: float, horizon: int, k: float = K) -> float:
    """The CUSUM bar for this panel's scale: known (95% intervals) or the spread of few seeds."""
    seeds = (panel.info.get("noise_seeds") or {}).get(metric) if panel.noise == "seeds" else None
    if seeds and seeds >= 2:
        return cusum_threshold_seeds(float(alpha), horizon, int(seeds), k)
    return cusum_threshold(float(alpha), horizon, k)


def cusum_first(z: Sequence[Optional[float]], h: float, k: float = K) -> Tuple[Optional[int], float]:
    """(first generation with S_g > h, or None; the largest S_g seen). z[0] is generation 1."""
    s = top = 0.0
    for g, zg in enumerate(z, start=1):
        if zg is None:
            continue
        s = max(0.0, s + zg - k)
        top = max(top, s)
        if s > h:
            return g, s
    return None, top


class CusumRule:
    """One-sided CUSUM of one leading indicator's change from generation 0, in units of its standard error."""

    def __init__(self, metric: str, k: float = K, margin: float = 0.0):
        self.metric, self.k, self.margin = metric, k, margin
        self.name = f"cusum_{metric}" + (f"_{margin:.0%}".replace("%", "pct") if margin else "")
        self.needs = (metric,)
        beyond = f" beyond {margin:.0%} of it" if margin else ""
        self.description = f"CUSUM (k={k}) of {metric}'s {'rise' if LEADING.get(metric, 1) > 0 else 'fall'} from generation 0{beyond}"

    def first_alarm(self, panel: ChainPanel, alpha: float) -> Optional[Alarm]:
        z = panel.z_scores(self.metric, self.margin)
        if z is None:
            return None
        h = threshold_for(panel, self.metric, alpha, max(panel.horizon, len(z)), self.k)
        g, s = cusum_first(z, h, self.k)
        return None if g is None else Alarm(self.name, g, self.metric, s, h)


class AnyLeading:
    """Any leading indicator's CUSUM, each at alpha / m (Bonferroni over the m indicators the panel has)."""

    needs = tuple(LEADING)
    combined = True  # needs any one of ``needs``, not all

    def __init__(self, margin: float = 0.0):
        self.margin = margin
        self.name = "any_leading" + (f"_{margin:.0%}".replace("%", "pct") if margin else "")
        self.description = ("the first alarm of every leading indicator's CUSUM, each at alpha / m (Bonferroni)"
                            + (f", counting only a change beyond {margin:.0%} of generation 0's value" if margin else ""))

    def indicators(self, panel: ChainPanel) -> List[str]:
        return [m for m in LEADING if panel.values and m in panel.values[0] and panel.z_scores(m) is not None]

    def first_alarm(self, panel: ChainPanel, alpha: float) -> Optional[Alarm]:
        members = self.indicators(panel)
        if not members:
            return None
        alarms = [a for a in (CusumRule(m, margin=self.margin).first_alarm(panel, alpha / len(members)) for m in members) if a]
        if not alarms:
            return None
        first = min(alarms, key=lambda a: (a.generation, -a.statistic / max(a.threshold, 1e-12)))
        return Alarm(self.name, first.generation, first.indicator, first.statistic, first.threshold)


class AlwaysG1:
    """Baseline: alarms at generation 1 on every chain that has one (a monitor that says "it will degrade")."""

    needs: Tuple[str, ...] = ()
    name = "always_g1"
    description = "baseline: alarm at generation 1 on every chain"

    def first_alarm(self, panel: ChainPanel, alpha: float) -> Optional[Alarm]:
        return Alarm(self.name, 1, "-", 1.0, 0.0) if len(panel.values) > 1 else None


class Never:
    """Baseline: never alarms (a monitor that says "it will hold")."""

    needs: Tuple[str, ...] = ()
    name = "never"
    description = "baseline: never alarm"

    def first_alarm(self, panel: ChainPanel, alpha: float) -> Optional[Alarm]:
        return None


BASELINES = ("always_g1", "never")

# module attributes, so that the registry's lazy "module:object" entries find them (madbench/monitoring/__init__.py)
for _metric in LEADING:
    globals()[f"cusum_{_metric}"] = CusumRule(_metric)
any_leading = AnyLeading()
any_leading_10pct = AnyLeading(margin=MARGIN)
always_g1 = AlwaysG1()
never = Never()
