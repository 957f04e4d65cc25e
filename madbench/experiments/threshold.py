"""How much human data is enough: bisection over the real share of a mixing regime.

    madbench threshold --preset tiny --regime fresh_data --tolerance 0.05
    madbench threshold --preset smoke --regime synthetic_augmentation --seeds 0 1 --steps 2 --output-dir /tmp/th

A share "holds" when the last generation's ``--metric`` (default perplexity), averaged
over ``--seeds``, stays within ``--tolerance`` of generation 0 (last / first <= 1 + tol for a
lower-is-better metric, >= 1 - tol for a higher-is-better one). Assuming more real data
never hurts, the search runs ``--high`` (must hold), then ``--low``, then ``--steps``
bisections of the bracket [failing share, holding share] to choose where to run points. The
threshold and its 95% confidence interval come from every point: an isotonic (monotone) fit of
the seed-mean margin over the share, with a parametric bootstrap (``threshold_fit.py``); each
point also records the real share actually trained on (with ``/accumulate``, the share of real
documents in the accumulated mix, below ``loop.real_fraction``). Every point is a normal run folder
``OUT/real-<share>/`` (resumable: re-running skips finished generations) and gets
generation 0 copied from the first point (it does not depend on the share). The summary,
with every point, its seed mean ratio and 95% interval, and wall times, is
``OUT/threshold.json``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from madbench.results import fileio
from madbench.errors import MadbenchError
from madbench.results.run_store import RunStore


def finite(text: str) -> float:
    """argparse type: a finite number (nan and inf refused with one line by argparse)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides applied to every point")
    p.add_argument("--preset", default="tiny", help="starting config (default: %(default)s)")
    p.add_argument("--config", help="YAML or JSON file with config values, applied over the preset")
    p.add_argument("--regime", default="fresh_data", help="a regime that mixes real data: fresh_data, synthetic_augmentation, "
                   "ecosystem, with /replace or /accumulate (default: %(default)s)")
    p.add_argument("--metric", default="perplexity", help="metric compared between the last generation and generation 0 (default: %(default)s)")
    p.add_argument("--tolerance", type=finite, default=0.05, help="allowed relative change of --metric (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per point (default: %(default)s)")
    p.add_argument("--low", type=finite, default=0.0, help="smallest real share searched (default: %(default)s)")
    p.add_argument("--high", type=finite, default=0.9, help="largest real share searched; must hold (default: %(default)s)")
    p.add_argument("--steps", type=int, default=3, help="bisection steps after the two ends (default: %(default)s)")
    p.add_argument("--output-dir", default="runs/threshold", help="folder of the points and threshold.json (default: %(default)s)")


def bisect(holds: Callable[[float], bool], low: float, high: float, steps: int) -> Tuple[Optional[float], Tuple[float, float]]:
    """(estimate, (failing, holding) bracket). estimate None when even ``high`` fails; ``low`` when it holds."""
    if not holds(high):
        return None, (high, 1.0)
    if holds(low):
        return low, (low, low)
    fail, hold = low, high
    for _ in range(steps):
        mid = round((fail + hold) / 2, 4)
        if holds(mid):
            hold = mid
        else:
            fail = mid
    return hold, (fail, hold)


def point_summary(results: dict, metric: str, higher_is_better: Optional[bool], tolerance: float) -> dict:
    """Per-seed ratio last / generation 0 of ``metric``, its seed summary, and whether the point holds."""
    from madbench.reporting.stats import seed_summary

    from madbench.experiments.threshold_fit import trained_real_share

    ratios, by_seed = [], {}
    for chain in results["chains"]:
        first, last = chain["generations"][0]["metrics"].get(metric), chain["generations"][-1]["metrics"].get(metric)
        if first and last is not None:
            ratios.append(last / first)
            by_seed[str(chain["seed"])] = last / first
    if not ratios:
        raise MadbenchError(f"metric '{metric}' was not computed by the points; add it to eval.metrics")
    summary = seed_summary(ratios)
    mean = summary["mean"]
    holds = mean >= 1 - tolerance if higher_is_better else mean <= 1 + tolerance
    return {"ratios": ratios, "ratios_by_seed": by_seed, "ratio_mean": mean,
            "ratio_ci95": [summary["ci95_low"], summary["ci95_high"]], "holds": holds,
            "real_share_trained": trained_real_share(results)}


def build(args):
    from madbench.config.run_config import build_config
    from madbench.config.presets import PRESETS
    from madbench.loop.regimes import REGIMES, parse_regime

    name, _ = parse_regime(args.regime)
    if not getattr(REGIMES.get(name), "mixes_real", False):
        mixing = ", ".join(n for n, f in REGIMES.items() if getattr(f, "mixes_real", False))
        raise MadbenchError(f"--regime {args.regime} has no real share to search; use one of {mixing}")
    if not (0.0 <= args.low < args.high <= 1.0):  # high = 1: an all-real control point
        raise MadbenchError(f"--low {args.low} and --high {args.high} must satisfy 0 <= low < high <= 1")
    if args.tolerance <= 0 or args.steps < 0 or not args.seeds:
        raise MadbenchError("--tolerance must be > 0, --steps >= 0 and --seeds non-empty")
    overrides = ["name=threshold", *args.overrides, f"loop.regimes=[{args.regime}]", "loop.mitigations=[none]",
                 f"loop.seeds=[{','.join(map(str, args.seeds))}]"]
    cfg = build_config(PRESETS.get(args.preset)(), args.config, overrides)
    if cfg.loop.synthetic_share is not None:
        raise MadbenchError("threshold searches loop.real_fraction; drop loop.synthetic_share")
    if args.metric not in cfg.eval.metrics:
        raise MadbenchError(f"--metric {args.metric} is not in eval.metrics ({', '.join(cfg.eval.metrics)}); add it or pick another")
    return cfg


def at_share(cfg, share: float):
    from madbench.config.validation import validate

    out = dataclasses.replace(cfg, loop=dataclasses.replace(cfg.loop, real_fraction=round(share, 4)))
    validate(out)
    return out


def main(args) -> int:
    from madbench.data.corpus import load_split
    from madbench.metrics import metric_info
    from madbench.loop.regimes import check_fresh
    from madbench.run import execute

    start = time.perf_counter()
    cfg = build(args)
    out = Path(args.output_dir)
    highest = at_share(cfg, args.high)  # the most fresh data any point needs: fail now, not after a point
    check_fresh(highest, len(load_split(highest).fresh))
    higher = metric_info(args.metric)["higher_is_better"]
    points: List[dict] = []

    def write(extra: dict) -> None:
        fileio.write_json(out / "threshold.json", {
            "regime": args.regime, "metric": args.metric, "tolerance": args.tolerance, "seeds": list(args.seeds),
            "low": args.low, "high": args.high, "steps": args.steps, "config": cfg.to_dict(),
            "points": sorted(points, key=lambda p: p["real_share"]), **extra})

    def holds(share: float) -> bool:
        point_cfg = at_share(cfg, share)
        run_dir = out / f"real-{share:.4f}"
        store = RunStore(run_dir)
        saved = store.config
        if saved.is_file() and fileio.read_json(saved).get("config_hash") != point_cfg.hash():
            raise MadbenchError(f"{run_dir} holds another search's run; pick another --output-dir or delete it")
        donor = next((RunStore(out / f"real-{p['real_share']:.4f}").gen0_root for p in points), None)
        if donor and donor.is_dir() and not store.gen0_root.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(donor, store.gen0_root)  # generation 0 does not depend on the share
        began = time.perf_counter()
        print(f"madbench threshold: real share {share:.4f} -> {run_dir}", flush=True)
        execute(point_cfg, run_dir, log=lambda msg: None)
        summary = point_summary(fileio.read_json(store.results), args.metric, higher, args.tolerance)
        points.append({"real_share": round(share, 4), "run_dir": str(run_dir), "seconds": round(time.perf_counter() - began, 1), **summary})
        print(f"  {args.metric} last/first = {summary['ratio_mean']:.4f} "
              f"[{summary['ratio_ci95'][0]:.4f}, {summary['ratio_ci95'][1]:.4f}] -> {'holds' if summary['holds'] else 'fails'}", flush=True)
        write({"complete": False})
        return summary["holds"]

    from madbench.experiments.threshold_fit import threshold_interval

    smallest, bracket = bisect(holds, args.low, args.high, args.steps)
    fit = threshold_interval(points, args.tolerance, higher)
    finite_or_none = lambda x: None if x is None or x == float("inf") else round(x, 4)  # noqa: E731  (inf: above --high)
    ci = fit["ci95"]
    write({"complete": True, "estimate": finite_or_none(fit["estimate"]),
           "ci95": None if ci is None else [finite_or_none(ci[0]), finite_or_none(ci[1])],
           "ci95_method": fit["method"], "seeds_n": fit["seeds"], "smallest_holding_share": smallest,
           "bracket": list(bracket), "wall_seconds": round(time.perf_counter() - start, 1)})
    trained = ", ".join(f"{p['real_share']:.3g} -> {p['real_share_trained']:.3g}" for p in sorted(points, key=lambda p: p["real_share"])
                        if p.get("real_share_trained") is not None)
    print(f"madbench threshold: real share set -> actually trained on (mean over generations >= 1): {trained}")
    if fit["estimate"] is None or fit["estimate"] == float("inf"):
        print(f"madbench threshold: even a real share of {args.high} does not hold {args.metric} within {args.tolerance:.0%}; "
              f"raise --high or --tolerance ({out / 'threshold.json'})")
    else:
        interval = "no interval (one seed)" if ci is None else \
            f"95% CI [{ci[0]:.4f}, {'above ' + str(args.high) if ci[1] == float('inf') else f'{ci[1]:.4f}'}]"
        print(f"madbench threshold: real share that holds {args.metric} within {args.tolerance:.0%}: {fit['estimate']:.4f}, "
              f"{interval} over {fit['seeds']} seeds (isotonic fit, parametric bootstrap; bisection bracket "
              f"{bracket[0]:.4f}-{bracket[1]:.4f}), {len(points)} points, {time.perf_counter() - start:.0f}s -> {out / 'threshold.json'}")
    return 0
