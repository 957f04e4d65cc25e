"""Early-warning monitoring of a chain's per-generation panel: alarm rules, a loop callback, scoring, an audit.

    madbench monitor runs/smoke                                   # which rules fire, per chain, at which generation
    madbench monitor --score leaderboard/submissions/*.json       # lead time vs false alarms, per rule
    madbench run --preset tiny monitor.rule=any_leading monitor.stop=true

A rule is registered in ``MONITOR_RULES`` (a plug-in's too: ``--plugin my_rule.py`` or the
``madbench.monitor_rules`` entry-point group); it is an object with ``needs`` (the metrics it reads; a
combined rule reads whichever of them the panel has) and ``first_alarm(panel, alpha) -> Alarm | None``
(madbench/monitoring/rules.py). The panel is a chain's values, intervals and noise scales
(madbench/monitoring/panel.py). The built-in rules are lazy entries: rules.py is imported on first use.
"""

from __future__ import annotations

import inspect
from typing import List

from madbench.errors import MadbenchError
from madbench.monitoring.panel import LEADING, Alarm, ChainPanel  # noqa: F401  (Alarm: for plug-in rules)
from madbench.registry import Registry

MONITOR_RULES = Registry("monitor rule")
for _metric in LEADING:
    MONITOR_RULES.add_lazy(f"cusum_{_metric}", f"madbench.monitoring.rules:cusum_{_metric}")
MONITOR_RULES.add_lazy("any_leading", "madbench.monitoring.rules:any_leading")
MONITOR_RULES.add_lazy("any_leading_10pct", "madbench.monitoring.rules:any_leading_10pct")
for _baseline in ("always_g1", "never"):  # baselines every score is read against (monitoring/score.py)
    MONITOR_RULES.add_lazy(_baseline, f"madbench.monitoring.rules:{_baseline}")


def get_rule(name: str):
    """The registered rule (a class is built with no arguments), checked to have needs and first_alarm."""
    rule = MONITOR_RULES.get(name)
    if inspect.isclass(rule):
        rule = rule()
    if not callable(getattr(rule, "first_alarm", None)) or not isinstance(getattr(rule, "needs", None), (tuple, list)):
        raise MadbenchError(f"monitor rule '{name}' must have needs (a tuple of metric names) and first_alarm(panel, alpha)")
    if not getattr(rule, "name", None):
        rule.name = name
    return rule


def missing_metrics(rule, panel: ChainPanel) -> List[str]:
    """The metrics the rule needs that the panel lacks (a combined rule: all of them, if it has none)."""
    have = set(panel.values[0]) if panel.values else set()
    needs = list(rule.needs)
    if getattr(rule, "combined", False):
        return [] if have & set(needs) else needs
    return [m for m in needs if m not in have]
