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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import mean, median
from typing import Dict, List, Optional, Sequence, Tuple

from madbench.monitoring import MONITOR_RULES, get_rule, missing_metrics
from madbench.monitoring.panel import LAGGING, LEADING, ChainPanel

ONSET_RATIO = 1.10


def onset(panel: ChainPanel, ratio: float = ONSET_RATIO) -> Optional[int]:
    """The first generation whose held-out perplexity is ``ratio`` x generation 0's, or None."""
    p = [v.get(LAGGING) for v in panel.values]
    if not p or p[0] is None:
        return None
    return next((g for g in range(1, len(p)) if p[g] is not None and p[g] >= ratio * p[0]), None)


def group_key(panel: ChainPanel) -> Tuple:
    i = panel.info
    return (i.get("model"), i.get("regime"), i.get("mode"), tuple(i.get("mitigations") or ()), i.get("real_fraction"))


def dedupe(panels: Sequence[ChainPanel]) -> List[ChainPanel]:
    seen, out = set(), []
    for p in panels:
        key = (p.info.get("model"), p.chain_id, tuple(round(v.get(LAGGING, float("nan")), 6) for v in p.values))
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
        return {"rule": self.rule, "model": self.model, "degrading": self.degrading,
                "warned_in_time": self.warned_in_time, "missed": self.leads.count(None),
                "median_lead": median(charged) if charged else None,
                "median_lead_fired": median(fired) if fired else None,
                "holding": self.holding, "false_alarms": self.false_alarms,
                "false_alarm_rate": round(self.false_alarms / self.holding, 3) if self.holding else None,
                "false_alarm_ci": [round(lo, 3), round(hi, 3)] if self.holding else None}


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
            if not usable(rule, p):
                continue
            s = scores.setdefault((name, model), RuleScore(name, model))
            alarm = rule.first_alarm(p, alpha)
            if cls == "degrading":
                s.leads.append(None if alarm is None else onset(p) - alarm.generation)
                if alarm is None:
                    s.misses_at.append(onset(p) - len(p.values))
            else:
                s.holding += 1
                s.false_alarms += alarm is not None
    return [s.row() for s in scores.values()], counts


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
    head = ("| rule | model | degrading | warned by onset | missed | median lead (gen) | holding | false alarms "
            "| false-alarm rate [95% CI] |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in sorted(rows, key=lambda r: (r["model"], -(r["warned_in_time"] / max(r["degrading"], 1)),
                                         r["false_alarm_rate"] if r["false_alarm_rate"] is not None else 1)):
        fa = "-" if r["false_alarm_rate"] is None else f"{r['false_alarm_rate']:.2f} [{r['false_alarm_ci'][0]:.2f}, {r['false_alarm_ci'][1]:.2f}]"
        lead = "-" if r["median_lead"] is None else f"{r['median_lead']:g}"
        lines.append(f"| {r['rule']} | {r['model']} | {r['degrading']} | {r['warned_in_time']} | {r['missed']} | {lead} "
                     f"| {r['holding']} | {r['false_alarms']} | {fa} |")
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
