"""Score alarm rules like a detector: lead time on chains that degrade, false alarms on chains that do not.

    madbench monitor --score leaderboard/submissions/*.json runs/smoke --output-dir runs/monitor-score

The lagging signal is held-out perplexity 10% above generation 0 (``ONSET_RATIO``); its onset is the
first generation where a chain crosses it. Chains are grouped by model, regime, mode, mitigations and
real share, over seeds:

* degrading: the chain crosses, and so does its group's seed-mean ratio (confirmed over seeds);
* holding: the chain never crosses, nor does its group's mean (fresh data, the all-real control,
  mitigations that hold);
* the rest (a seed that crosses when its group's mean does not, or the reverse) are left out and counted.

Per rule: on degrading chains, the lead time = onset - alarm generation (positive: it warned first;
a rule that never fires is a miss, counted in the median as firing just after the last generation) and the share warned at or before the onset; on holding chains, the
false-alarm rate with its Wilson 95% interval. Chains repeated across inputs (the same model, chain
id and perplexities) count once.

Against what doing nothing gives: ``always_g1`` warns in time on every degrading chain, with a lead of
onset - 1 by construction, and fires on every holding one; ``never`` does neither. Both have
J = (share warned in time) - (false-alarm rate) = 0, so a rule's **J** is what it adds to them, and the lead
``always_g1`` gets on the same chains (``trivial_lead``) stands beside its own. The **shuffled null** is a
random rule with the same alarms: the rule's alarm generations dealt out to the scored chains at random
(``SHUFFLES`` times); ``p`` = the share of shuffles with a J at least the rule's. A rule is **useful** when
its J's lower bound (the Wilson lower bound of the share warned in time minus the upper bound of the false-alarm
rate) is above 0 and p < 0.05; it is **usable** on a set of chains when it is useful there and reads a panel that every
degrading chain has (``covers_all``). Choose a rule and its alpha on one set of chains (``choose``) and
score it on another: ``madbench monitor --score SCORE_INPUTS --select-on SELECT_INPUTS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import mean, median
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from madbench.monitoring import MONITOR_RULES, get_rule, missing_metrics
from madbench.monitoring.panel import LAGGING, LEADING, ChainPanel

ONSET_RATIO = 1.10
SHUFFLES = 2000
SHUFFLE_SEED = 41
USEFUL_P = 0.05
ALPHAS = (0.01, 0.05, 0.2)  # the alphas a rule is chosen at (with it) on the select set


def onset(panel: ChainPanel, ratio: float = ONSET_RATIO) -> Optional[int]:
    """The first generation whose held-out perplexity is ``ratio`` x generation 0's, or None."""
    p = [v.get(LAGGING) for v in panel.values]
    if not p or p[0] is None:
        return None
    return next((g for g in range(1, len(p)) if p[g] is not None and p[g] >= ratio * p[0]), None)


def group_key(panel: ChainPanel) -> Tuple:
    i = panel.info
    return (i.get("model"), i.get("regime"), i.get("mode"), tuple(i.get("mitigations") or ()), i.get("real_fraction"))


def chain_key(p: ChainPanel) -> Tuple:
    """The same chain wherever it was submitted: model, chain id and its perplexities."""
    return (p.info.get("model"), p.chain_id, tuple(round(v.get(LAGGING, float("nan")), 6) for v in p.values))


def dedupe(panels: Sequence[ChainPanel]) -> List[ChainPanel]:
    seen, out = set(), []
    for p in panels:
        key = chain_key(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def classify(panels: Sequence[ChainPanel], ratio: float = ONSET_RATIO) -> Dict[str, str]:
    """chain key -> 'degrading', 'holding' or 'mixed' (its seed disagrees with its group's mean)."""
    groups: Dict[Tuple, List[ChainPanel]] = {}
    for p in panels:
        groups.setdefault(group_key(p), []).append(p)
    out = {}
    for members in groups.values():
        n = min(len(p.values) for p in members)
        ratios = [mean(p.values[g][LAGGING] / p.values[0][LAGGING] for p in members) for g in range(1, n)]
        group_degrades = any(r >= ratio for r in ratios)
        for p in members:
            own = onset(p, ratio) is not None
            out[key_of(p)] = "degrading" if own and group_degrades else "holding" if not own and not group_degrades else "mixed"
    return out


def key_of(panel: ChainPanel) -> str:
    return f"{panel.info.get('model')}/{panel.chain_id}@{panel.info.get('source')}"


def wilson(k: int, n: int, z: float = 1.959963984540054) -> Tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class RuleScore:
    rule: str
    model: str
    leads: List[Optional[int]] = field(default_factory=list)  # per degrading chain: onset - alarm, None = missed
    misses_at: List[int] = field(default_factory=list)  # a miss's lead if it had fired just after the last generation
    false_alarms: int = 0
    holding: int = 0
    chains: List[Tuple[Optional[int], Optional[int]]] = field(default_factory=list)  # (onset or None, alarm or None)
    unscored_degrading: int = 0  # degrading chains of the model whose panel the rule cannot read

    @property
    def degrading(self) -> int:
        return len(self.leads)

    @property
    def warned_in_time(self) -> int:
        return sum(1 for x in self.leads if x is not None and x >= 0)

    def row(self) -> dict:
        fired = [x for x in self.leads if x is not None]
        charged = fired + self.misses_at  # a miss counts as an alarm after the run: the median cannot hide it
        lo, hi = wilson(self.false_alarms, self.holding)
        j, shuffled, p = separation(self.chains)
        trivial = [o - 1 for o, _ in self.chains if o is not None]
        # J's conservative lower bound: the Wilson lower bound of the share warned minus the upper bound of the false alarms
        j_low = None if j is None else round(wilson(self.warned_in_time, self.degrading)[0] - hi, 3)
        return {"rule": self.rule, "model": self.model, "degrading": self.degrading,
                "warned_in_time": self.warned_in_time, "missed": self.leads.count(None),
                "median_lead": median(charged) if charged else None,
                "median_lead_fired": median(fired) if fired else None,
                "holding": self.holding, "false_alarms": self.false_alarms,
                "false_alarm_rate": round(self.false_alarms / self.holding, 3) if self.holding else None,
                "false_alarm_ci": [round(lo, 3), round(hi, 3)] if self.holding else None,
                "trivial_lead": median(trivial) if trivial else None,
                "j": j, "j_low": j_low, "shuffled_j": shuffled, "p": p,
                "useful": j is not None and j_low > 0 and p < USEFUL_P,
                "unscored_degrading": self.unscored_degrading, "covers_all": self.unscored_degrading == 0}


def _j(onsets: np.ndarray, alarms: np.ndarray) -> np.ndarray:
    """J per row of ``alarms`` (alarm generation, inf = none) over chains with ``onsets`` (nan = holding)."""
    deg = ~np.isnan(onsets)
    tpr = (alarms[..., deg] <= onsets[deg]).mean(axis=-1)
    fpr = np.isfinite(alarms[..., ~deg]).mean(axis=-1)
    return tpr - fpr


def separation(chains: Sequence[Tuple[Optional[int], Optional[int]]]) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """(J, mean J of the shuffled null, p) over (onset, alarm) pairs; None without both kinds of chain."""
    onsets = np.array([np.nan if o is None else o for o, _ in chains], dtype=float)
    alarms = np.array([np.inf if a is None else a for _, a in chains], dtype=float)
    if not len(chains) or np.isnan(onsets).all() or not np.isnan(onsets).any():
        return None, None, None
    j = float(_j(onsets, alarms))
    rng = np.random.default_rng(SHUFFLE_SEED)
    null = _j(onsets, np.stack([rng.permutation(alarms) for _ in range(SHUFFLES)]))
    p = (1 + int((null >= j - 1e-12).sum())) / (1 + SHUFFLES)
    return round(j, 3), round(float(null.mean()), 3), round(p, 4)


def score(panels: Sequence[ChainPanel], rules: Sequence[str], alpha: float) -> Tuple[List[dict], dict]:
    """(one row per rule and model, counts of chains by class and model)."""
    panels = [p for p in dedupe(panels) if p.values and LAGGING in p.values[0]]
    classes = classify(panels)
    counts: Dict[str, Dict[str, int]] = {}
    scores: Dict[Tuple[str, str], RuleScore] = {}
    for p in panels:
        model, cls = str(p.info.get("model")), classes[key_of(p)]
        counts.setdefault(model, {"degrading": 0, "holding": 0, "mixed": 0})[cls] += 1
        if cls == "mixed":
            continue
        for name in rules:
            rule = get_rule(name)
            s = scores.setdefault((name, model), RuleScore(name, model))
            if not usable(rule, p):
                s.unscored_degrading += cls == "degrading"
                continue
            alarm = rule.first_alarm(p, alpha)
            s.chains.append((onset(p) if cls == "degrading" else None, None if alarm is None else alarm.generation))
            if cls == "degrading":
                s.leads.append(None if alarm is None else onset(p) - alarm.generation)
                if alarm is None:
                    s.misses_at.append(onset(p) - len(p.values))
            else:
                s.holding += 1
                s.false_alarms += alarm is not None
    return [s.row() for s in scores.values() if s.chains], counts


def choose(panels: Sequence[ChainPanel], rules: Sequence[str], alphas: Sequence[float] = ALPHAS) -> Dict[str, dict]:
    """model -> the rule and alpha chosen on these chains: usable (useful, reads every degrading chain), the
    largest J, then the longest median lead, then the fewest false alarms. A model with none is left out."""
    best: Dict[str, dict] = {}
    for alpha in alphas:
        for r in score(panels, rules, alpha)[0]:
            if not (r["useful"] and r["covers_all"]):
                continue
            key = (r["j"], r["median_lead"] if r["median_lead"] is not None else -99, -(r["false_alarm_rate"] or 0))
            if r["model"] not in best or key > best[r["model"]]["_key"]:
                best[r["model"]] = dict(r, alpha=alpha, _key=key)
    return {m: {k: v for k, v in r.items() if k != "_key"} for m, r in best.items()}


def usable(rule, panel: ChainPanel) -> bool:
    """The panel has what the rule reads, and a noise scale for each leading indicator among it."""
    if missing_metrics(rule, panel):
        return False
    have = [m for m in rule.needs if m in panel.values[0]]
    scaled = [m for m in have if m not in LEADING or panel.z_scores(m) is not None]
    return bool(scaled) if getattr(rule, "combined", False) else len(scaled) == len(have)


def default_rules() -> List[str]:
    return list(MONITOR_RULES.registered())


def markdown(rows: Sequence[dict]) -> str:
    head = ("| rule | model | degrading | warned by onset | missed | median lead (gen) | always_g1's lead | holding "
            "| false alarms | false-alarm rate [95% CI] | J (lower bound) | shuffled J | p | useful |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in sorted(rows, key=lambda r: (r["model"], -(r["j"] if r["j"] is not None else -9),
                                         -(r["warned_in_time"] / max(r["degrading"], 1)))):
        fa = "-" if r["false_alarm_rate"] is None else f"{r['false_alarm_rate']:.2f} [{r['false_alarm_ci'][0]:.2f}, {r['false_alarm_ci'][1]:.2f}]"
        lead = "-" if r["median_lead"] is None else f"{r['median_lead']:g}"
        trivial = "-" if r.get("trivial_lead") is None else f"{r['trivial_lead']:g}"
        num = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        deg = f"{r['degrading']}" + (f" (+{r['unscored_degrading']} unread)" if r.get("unscored_degrading") else "")
        lines.append(f"| {r['rule']} | {r['model']} | {deg} | {r['warned_in_time']} | {r['missed']} | {lead} | {trivial} "
                     f"| {r['holding']} | {r['false_alarms']} | {fa} | {num(r.get('j'))} ({num(r.get('j_low'))}) | {num(r.get('shuffled_j'))} "
                     f"| {'-' if r.get('p') is None else format(r['p'], '.3f')} | {'yes' if r.get('useful') else 'no'} |")
    return "\n".join(lines)


def figure(rows: Sequence[dict], path) -> None:
    """Median lead time against false-alarm rate, one point per rule and model (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    models = sorted({r["model"] for r in rows})
    for i, model in enumerate(models):
        pts = [r for r in rows if r["model"] == model and r["median_lead"] is not None and r["false_alarm_rate"] is not None]
        shift = (i - (len(models) - 1) / 2) * 0.012  # models side by side where their points coincide
        ax.scatter([r["false_alarm_rate"] + shift for r in pts], [r["median_lead"] for r in pts], label=model,
                   marker="os^D"[i % 4], alpha=0.75)
        spots: Dict[Tuple[float, float], List[str]] = {}
        for r in pts:
            spots.setdefault((r["false_alarm_rate"] + shift, r["median_lead"]), []).append(r["rule"].replace("cusum_", ""))
        for (x, y), names in spots.items():
            label = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
            ax.annotate(label, (x, y), fontsize=6, xytext=(4, 3 - 9 * i), textcoords="offset points")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("false-alarm rate on chains that hold")
    ax.set_ylabel("median lead (generations before perplexity +10%;\na miss = an alarm after the last generation)", fontsize=8)
    ax.set_title("Alarm rules: lead time vs false alarms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
