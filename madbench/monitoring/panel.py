"""A chain's per-generation panel as the monitor reads it, from a run folder or a leaderboard submission.

    python -c "from madbench.monitoring.panel import load_panels; print(load_panels(['runs/smoke'])[0])"

Each leading indicator is standardised as its change from generation 0, signed so that a positive
value points towards collapse, in units of that change's standard error:

    z_g = sign * (x_g - x_0) / sqrt(se_g^2 + se_0^2)

The standard error comes from the generation's 95% interval, se = (hi - lo) / (2 * 1.96)
(results.json; madbench/metrics/intervals.py), and is 0 at generation 0 for the reference-panel
metrics, which hold generation 0 fixed. A leaderboard submission carries no intervals: there the scale
is the spread of generation 0 over the seeds of the same model (``attach_seed_noise``): training and
sampling noise together, estimated from few seeds. The panel says which it used (``noise``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import stdev
from typing import Dict, List, Optional, Sequence

from madbench.config import limits
from madbench.errors import MadbenchError
from madbench.results import untrusted

Z95 = 1.959963984540054
# Leading indicators, with the sign of the change that points towards collapse (+1: a rise, -1: a fall):
# less diversity, more repetition, a lost tail (Shumailov et al. 2024; Guo et al. 2024). Perplexity on
# held-out text is the lagging signal the monitor is scored against, so it is not one of them.
LEADING: Dict[str, int] = {
    "distinct_1": -1, "distinct_2": -1, "distinct_3": -1, "distinct_4": -1, "type_token_ratio": -1,
    "self_bleu": +1, "unigram_entropy": -1, "repetition_4gram": +1, "duplicate_rate": +1, "compression_ratio": +1,
    "mtld": -1, "hdd": -1, "vendi_score": -1, "pairwise_cosine_distance": -1, "mauve": -1,
    "frechet_embedding_distance": +1, "tail_w1_log_ppl": +1, "tail_below_g0_p05": +1, "tail_above_g0_p95": +1,
    "rare_word_recall": -1, "rare_token_mass_ratio": -1,
}
LAGGING = "perplexity"
REFERENCE_FIXED = ("tail_", "rare_token_mass_ratio")  # generation 0 is their reference: no noise at g = 0
PANEL_KEY = "eval.metrics"  # the config key that turns the panel's metrics on


@dataclass(frozen=True)
class Alarm:
    """A rule fired at ``generation`` because of ``indicator`` (its z and the bar it crossed)."""

    rule: str
    generation: int
    indicator: str
    statistic: float
    threshold: float

    def line(self) -> str:
        return (f"{self.rule} fired at generation {self.generation} on {self.indicator} "
                f"(statistic {self.statistic:.2f} > {self.threshold:.2f})")


@dataclass
class ChainPanel:
    """One chain: ``values[g]`` and ``intervals[g]`` per generation, ``horizon`` = the generations planned."""

    chain_id: str
    values: List[Dict[str, float]]
    intervals: List[Dict[str, list]] = field(default_factory=list)
    horizon: int = 0
    info: Dict[str, object] = field(default_factory=dict)  # regime, seed, mitigations, model, source
    seed_noise: Dict[str, float] = field(default_factory=dict)  # metric -> sd of generation 0 over seeds

    @property
    def noise(self) -> str:
        return "intervals" if any(self.intervals) else ("seeds" if self.seed_noise else "none")

    def metrics(self) -> List[str]:
        return sorted(set(self.values[0]) if self.values else set())

    def _se(self, metric: str, g: int) -> Optional[float]:
        if metric.startswith(REFERENCE_FIXED) and g == 0:
            return 0.0
        iv = self.intervals[g].get(metric) if g < len(self.intervals) else None
        if iv and iv[0] is not None and iv[1] is not None:
            return (float(iv[1]) - float(iv[0])) / (2 * Z95)
        return None

    def z_scores(self, metric: str, margin: float = 0.0) -> Optional[List[Optional[float]]]:
        """z_g for g = 1..last (None where a value is missing); None when the metric has no noise scale.
        ``margin``: a change towards collapse smaller than margin x |x_0| counts as none (the numerator loses it)."""
        sign = LEADING.get(metric, 1)
        x0 = self.values[0].get(metric) if self.values else None
        if x0 is None:
            return None
        out: List[Optional[float]] = []
        for g in range(1, len(self.values)):
            xg = self.values[g].get(metric)
            if xg is None or not math.isfinite(xg):
                out.append(None)
                continue
            se0, seg = self._se(metric, 0), self._se(metric, g)
            if se0 is not None and seg is not None:
                scale = math.hypot(se0, seg)
            elif metric in self.seed_noise:
                scale = self.seed_noise[metric] * math.sqrt(2)
            else:
                return None
            change = sign * (xg - x0) - margin * abs(x0)
            out.append(change / scale if scale > 0 else (0.0 if change == 0 else math.copysign(math.inf, change)))
        return out


def _chain_panels(data: dict, source: str) -> List[ChainPanel]:
    cfg = data.get("config") or {}
    horizon = (cfg.get("loop") or {}).get("generations", 0) if isinstance(cfg, dict) else 0
    bound = limits.bounds()["loop.generations"]  # --score sizes its arrays by it: bounded like a run's, before any allocation
    if type(horizon) is not int or not 0 <= horizon <= bound:
        raise MadbenchError(f"{source}: field 'config/loop/generations' = {str(horizon)[:40]} is not a generation count "
                            f"of 0 to {bound} (config/limits.py; {limits.ENV}=loop.generations=N lifts it)")
    m = cfg.get("model") or {}
    model = str(m.get("name", "?")) + (f"-{m['tiny_size']}" if m.get("name") == "tiny" and m.get("tiny_size") else "")
    samples = (cfg.get("sampling") or {}).get("num_samples")
    panels = []
    for i, chain in enumerate(data.get("chains") or []):
        gens = chain.get("generations") if isinstance(chain, dict) else None
        if not isinstance(chain, dict) or not isinstance(chain.get("id"), str) or not isinstance(gens, list):
            raise MadbenchError(f"{source}: field 'chains/{i}' is not a chain with an 'id' and a 'generations' list")
        for j, g in enumerate(gens):
            if not isinstance(g, dict) or type(g.get("generation")) is not int or not 0 <= g["generation"] <= 10**6:
                raise MadbenchError(f"{source}: field 'chains/{i}/generations/{j}/generation' is not a generation number")
            if not isinstance(g.get("metrics") or {}, dict) or not isinstance(g.get("intervals") or {}, dict):
                raise MadbenchError(f"{source}: field 'chains/{i}/generations/{j}' has metrics or intervals that are not objects")
        gens = sorted(gens, key=lambda g: g["generation"])
        panels.append(ChainPanel(
            chain_id=chain["id"],
            values=[{k: float(v) for k, v in (g.get("metrics") or {}).items() if isinstance(v, (int, float)) and math.isfinite(v)} for g in gens],
            intervals=[dict(g.get("intervals") or {}) for g in gens],
            horizon=horizon or max(len(gens) - 1, 0),
            info={"regime": chain.get("regime"), "mode": chain.get("mode"), "seed": chain.get("seed"),
                  "mitigations": list(chain.get("mitigations") or []), "model": model, "source": source, "num_samples": samples,
                  "real_fraction": (cfg.get("loop") or {}).get("real_fraction")}))
    return panels


def load_panels(paths: Sequence[str]) -> List[ChainPanel]:
    """Panels of every chain in each run folder (its results.json) or submission / results JSON file."""
    panels: List[ChainPanel] = []
    for raw in paths:
        path = Path(raw)
        file = path / "results.json" if path.is_dir() else path
        if not file.is_file():
            why = "has no results.json (finish or resume the run first)" if path.is_dir() else "does not exist"
            raise MadbenchError(f"{raw} {why}; give a run folder or a submission/results JSON file")
        try:
            data = untrusted.read(file, nonfinite=True)  # bounded: one line naming the file and field
        except untrusted.UntrustedJSON as exc:
            raise MadbenchError(f"{file} is not a madbench results or submission JSON file: field '{exc.field}': {exc.message}") from None
        if not isinstance(data, dict) or not isinstance(data.get("chains"), list):
            raise MadbenchError(f"{file} has no 'chains' list: not a madbench results.json or submission file")
        panels.extend(_chain_panels(data, str(raw)))
    return panels


def attach_seed_noise(panels: List[ChainPanel]) -> None:
    """For panels without intervals: each metric's sd of generation 0 over the distinct seeds of the same model
    and sample count."""
    by_model: Dict[tuple, Dict[str, Dict[object, float]]] = {}
    for p in panels:
        if p.values:
            seeds = by_model.setdefault((p.info.get("model"), p.info.get("num_samples")), {})
            for metric, value in p.values[0].items():
                seeds.setdefault(metric, {}).setdefault(p.info.get("seed"), value)  # one value per seed
    for p in panels:
        if not any(p.intervals):
            seeds = by_model.get((p.info.get("model"), p.info.get("num_samples")), {})
            p.seed_noise = {m: stdev(v.values()) for m, v in seeds.items() if len(v) >= 2}
            p.info["noise_seeds"] = {m: len(v) for m, v in seeds.items() if len(v) >= 2}  # the rules' threshold reads it
