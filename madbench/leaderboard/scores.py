"""Summary scores: the leaderboard's columns, defined once.

    from madbench.leaderboard.scores import SCORES, group_scores
    rows = group_scores(results["chains"], metrics_info)   # one row per regime/mode/mitigation set

Every score is computed per chain from its per-generation metrics, then summarised
over seeds with :func:`madbench.reporting.stats.seed_summary` (mean, std, n, 95% interval).
``submit`` stores the result; ``leaderboard validate`` recomputes it from the
per-generation data and rejects a submission whose stored scores differ; the
site's help page prints the definitions below (label, direction, description).

Relative degradation of a metric at generation g (in %, positive = worse):
``100 * (m_g - m_0) / |m_0|`` when lower is better, ``100 * (m_0 - m_g) / |m_0|``
when higher is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from madbench.reporting import stats
from madbench.headline import DIVERSITY, QUALITY  # perplexity (lower is better), distinct_2 (higher is better)

SCORES_VERSION = "1"
DEGRADE_PCT = 10.0  # X of "generations until perplexity degrades by X%"


@dataclass(frozen=True)
class Score:
    name: str
    label: str  # column header
    higher_is_better: bool
    unit: str  # '%', 'x', 'gen' or ''
    description: str  # one paragraph, shown on the help page
    fn: Callable[[dict, dict], Optional[float]]  # (chain, metrics_info) -> value or None


def series(chain: dict, metric: str) -> list[tuple[int, float]]:
    """[(generation, value)] of one metric in a chain, finite values only, by generation."""
    out = []
    for gen in chain.get("generations") or []:
        value = (gen.get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(gen["generation"]), float(value)))
    return sorted(out)


def degradation(value: float, base: float, higher_is_better: bool) -> Optional[float]:
    """Relative degradation in % (positive = worse than ``base``); None when base is 0."""
    if base == 0:
        return None
    change = (value - base) / abs(base) * 100.0
    return -change if higher_is_better else change


def _base_last(chain: dict, metric: str):
    s = series(chain, metric)
    if len(s) < 2 or s[0][0] != 0:
        return None, None, s
    return s[0][1], s[-1][1], s


def ppl_increase_pct(chain: dict, info: dict) -> Optional[float]:
    base, last, _ = _base_last(chain, QUALITY)
    return None if base is None else degradation(last, base, False)


def diversity_retained(chain: dict, info: dict) -> Optional[float]:
    base, last, _ = _base_last(chain, DIVERSITY)
    return None if not base else last / base


def degradation_auc(chain: dict, metric: str, higher_is_better: bool) -> Optional[float]:
    """Trapezoid area under degradation(g) over generations 0..G, divided by G (a mean, in %)."""
    base, _, s = _base_last(chain, metric)
    if base is None or base == 0:
        return None
    xs = [g for g, _ in s]
    ys = [degradation(v, base, higher_is_better) for _, v in s]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / (xs[-1] - xs[0])


def generations_until_degraded(chain: dict, metric: str, higher_is_better: bool, pct: float = DEGRADE_PCT) -> Optional[float]:
    """First generation whose degradation reaches ``pct``; last generation + 1 if none does (censored)."""
    base, _, s = _base_last(chain, metric)
    if base is None or base == 0:
        return None
    for g, v in s[1:]:
        if degradation(v, base, higher_is_better) >= pct:
            return float(g)
    return float(s[-1][0] + 1)


def _last(metric: str):
    def fn(chain, info):
        s = series(chain, metric)
        return s[-1][1] if s else None
    return fn


SCORES: list[Score] = [
    Score("ppl_increase_pct", "PPL increase", False, "%",
          "Perplexity on held-out human text at the last generation relative to generation 0: "
          "100 * (ppl_last / ppl_0 - 1). 0 means no loss of quality; collapse drives it up.", ppl_increase_pct),
    Score("diversity_retained", "Diversity kept", True, "x",
          "Distinct-2 of the last generation's samples divided by distinct-2 at generation 0. "
          "1.0 means the samples are as varied as at the start; collapse drives it towards 0.", diversity_retained),
    Score("ppl_auc", "PPL degradation AUC", False, "%",
          "Area under the perplexity degradation curve (relative increase over generation 0, in %) from "
          "generation 0 to the last, by the trapezoid rule, divided by the number of generations: the mean "
          "degradation over the run. Unlike the last-generation increase it rewards degrading later.",
          lambda c, i: degradation_auc(c, QUALITY, False)),
    Score("diversity_auc", "Diversity loss AUC", False, "%",
          "The same normalised area for the distinct-2 degradation curve (relative decrease over generation 0, in %).",
          lambda c, i: degradation_auc(c, DIVERSITY, True)),
    Score("gens_to_ppl_degrade", f"Gens to +{DEGRADE_PCT:g}% PPL", True, "gen",
          f"The first generation whose perplexity is at least {DEGRADE_PCT:g}% above generation 0. A chain that "
          "never degrades that much counts as its last generation + 1 (it survived the whole run).",
          lambda c, i: generations_until_degraded(c, QUALITY, False)),
    Score("perplexity_last", "PPL (last)", False, "",
          "Perplexity on held-out human text at the last generation (absolute; compare only on the same corpus).",
          _last(QUALITY)),
    Score("distinct_2_last", "Distinct-2 (last)", True, "",
          "Distinct-2 (unique bigrams / bigrams) of the last generation's samples (absolute).", _last(DIVERSITY)),
]
SCORE_NAMES = [s.name for s in SCORES]


def chain_scores(chain: dict, metrics_info: dict | None = None) -> dict:
    """{score name: value or None} for one results.json chain."""
    return {s.name: s.fn(chain, metrics_info or {}) for s in SCORES}


def group_scores(chains: list[dict], metrics_info: dict | None = None) -> list[dict]:
    """One row per chain group (regime, mode, mitigations): seeds, last generation and per score a seed summary."""
    rows = []
    for group in stats.aggregate_chains(chains):
        members = [c for c in chains if stats.group_key(c) == (group["regime"], group["mode"], tuple(group["mitigations"]))]
        per_chain = [chain_scores(c, metrics_info) for c in members]
        last = max((int(g["generation"]) for c in members for g in c.get("generations") or []), default=None)
        rows.append({
            "label": group["label"], "regime": group["regime"], "mode": group["mode"],
            "mitigations": list(group["mitigations"]), "seeds": list(group["seeds"]), "last_generation": last,
            "scores": {name: stats.seed_summary([p[name] for p in per_chain]) for name in SCORE_NAMES},
        })
    return rows


def scores_block(chains: list[dict], metrics_info: dict | None = None) -> dict:
    """What a submission stores under ``scores``."""
    return {"version": SCORES_VERSION, "degrade_pct": DEGRADE_PCT, "groups": group_scores(chains, metrics_info)}


def definitions() -> list[dict]:
    """The score table for the help page and the site's column headers."""
    return [{"name": s.name, "label": s.label, "higher_is_better": s.higher_is_better, "unit": s.unit,
             "description": s.description} for s in SCORES]


def differs(stored, computed, rel: float = 1e-6) -> bool:
    """True when two stored/recomputed numbers (or Nones) disagree beyond float noise."""
    if stored is None or computed is None:
        return (stored is None) != (computed is None)
    if not isinstance(stored, (int, float)) or isinstance(stored, bool):
        return True
    return abs(float(stored) - float(computed)) > rel * max(1.0, abs(float(computed)))
