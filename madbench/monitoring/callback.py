"""The monitor as a loop callback: after every generation, run the configured rule on that chain's panel.

    madbench run --preset tiny monitor.rule=any_leading                  # warn when a chain's rule fires
    madbench run --preset tiny monitor.rule=cusum_distinct_2 monitor.stop=true monitor.alpha=0.01

A warning line names the chain, the generation, the indicator and its statistic against the bar. With
``monitor.stop=true`` the run stops there with one line (exit 2); every finished generation is kept, and
``madbench run --resume RUN`` goes on: a chain is stopped for once, the generation its rule first fires at
(the monitor keys are outside the config hash, so a resume may not change them, but it need not).
The panel is read back from the chain's published generations (``meta.json``), so a resumed run's
monitor sees the generations an earlier attempt made.
"""

from __future__ import annotations

from typing import Callable, Dict

from madbench.errors import MadbenchError
from madbench.loop.callbacks import Callback
from madbench.monitoring import get_rule, missing_metrics
from madbench.monitoring.panel import PANEL_KEY, ChainPanel
from madbench.results import fileio
from madbench.results.run_store import META, RunStore


def check_monitor(cfg) -> None:
    """Before anything runs: the rule exists, alpha is a rate, and eval.metrics computes what the rule reads."""
    rule = get_rule(cfg.monitor.rule)
    alpha = cfg.monitor.alpha
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise MadbenchError(f"monitor.alpha must be a false-alarm rate between 0 and 1 (e.g. 0.05), got {alpha!r}")
    panel = ChainPanel("config", [{m: 0.0 for m in cfg.eval.metrics}])
    missing = missing_metrics(rule, panel)
    if missing:
        what = "one of " if getattr(rule, "combined", False) else ""
        raise MadbenchError(f"monitor.rule={cfg.monitor.rule} reads {what}{', '.join(missing)}, which {PANEL_KEY} does not "
                            f"compute; add it to {PANEL_KEY} or choose another rule (madbench list monitor_rules)")


class MonitorCallback(Callback):
    """Warns (or stops the run) when ``cfg.monitor.rule`` first fires on a chain."""

    def __init__(self, cfg, run_dir, log: Callable[[str], None] = print):
        self.rule = get_rule(cfg.monitor.rule)
        self.alpha, self.stop = float(cfg.monitor.alpha), bool(cfg.monitor.stop)
        self.horizon = int(cfg.loop.generations)
        self.store, self.log, self.run_dir = RunStore(run_dir), log, run_dir
        self.reported: Dict[str, int] = {}

    def panel(self, chain_id: str, g: int) -> ChainPanel:
        metas = [fileio.read_json(self.store.gen_dir(chain_id, k) / META) for k in range(g + 1)]
        return ChainPanel(chain_id, [m.get("metrics") or {} for m in metas], [m.get("intervals") or {} for m in metas],
                          horizon=self.horizon)

    def on_step_end(self, chain, g, meta, seconds):
        if meta is None or g == 0 or chain.id in self.reported or not self.store.generation_done(chain.id, g):
            return
        alarm = self.rule.first_alarm(self.panel(chain.id, g), self.alpha)
        if alarm is None:
            return
        self.reported[chain.id] = alarm.generation
        line = f"monitor: {chain.id}: {alarm.line()} (false-alarm rate {self.alpha:g} per chain)"
        if self.stop and alarm.generation == g:  # fired just now: stop once; a resume goes on
            raise MadbenchError(f"{line}; stopped by monitor.stop=true after generation {g} was saved; "
                                f"continue with: madbench run --resume {self.run_dir}")
        self.log(f"madbench: warning: {line}")
