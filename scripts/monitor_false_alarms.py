"""Measure the CUSUM rules' false-alarm rate on simulated stationary chains (a seed unlike the calibration's).

    python scripts/monitor_false_alarms.py --chains 4000 --alphas 0.05 0.2 --horizons 2 5 10
"""

from __future__ import annotations

import argparse

import numpy as np

from madbench.monitoring import ChainPanel, get_rule
from madbench.monitoring.panel import Z95


def stationary(rng, horizon: int, se: float) -> ChainPanel:
    """distinct_2 around 0.6, each generation's 95% interval value +/- 1.96 se, as results.json writes it."""
    x = 0.6 + se * rng.standard_normal(horizon + 1)
    return ChainPanel("sim", [{"distinct_2": float(v)} for v in x],
                      [{"distinct_2": [float(v) - Z95 * se, float(v) + Z95 * se]} for v in x], horizon=horizon)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=4000)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.05, 0.2])
    p.add_argument("--horizons", type=int, nargs="+", default=[2, 5, 10])
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    rule = get_rule("cusum_distinct_2")
    print("| alpha | horizon | false-alarm rate | binomial 95% half-width |\n|---|---|---|---|")
    for alpha in args.alphas:
        for horizon in args.horizons:
            fired = sum(rule.first_alarm(stationary(rng, horizon, 0.01), alpha) is not None for _ in range(args.chains))
            half = 1.96 * np.sqrt(alpha * (1 - alpha) / args.chains)
            print(f"| {alpha:g} | {horizon} | {fired / args.chains:.3f} | {half:.3f} |")


if __name__ == "__main__":
    main()
