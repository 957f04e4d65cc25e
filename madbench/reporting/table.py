"""Print a run's per-generation table (values with their 95% intervals) and where its time went.

    madbench table runs/default                                   # headline metrics, every generation
    madbench table runs/default --metrics perplexity,distinct_2 --last   # the last generation only
    madbench table runs/default runs/mitigations --timing         # share of train / evaluate / sample / lm-eval

The table is Markdown. Each cell is ``value [low, high]``: the estimator interval stored beside the
value in results.json (bootstrap over samples or held-out documents, lm-eval's stderr; see
madbench/metrics/intervals.py), i.e. the uncertainty from how many samples were scored, not across
seeds (``madbench sweep`` gives that). ``--timing`` sums ``generations[].timing`` over every
generation >= 1 (generation 0 reuses the shared training) and lm-eval's own seconds from
``<generation>/lm_eval/results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

PHASES = ("train", "evaluate_model", "sample", "evaluate_samples")


def add_arguments(p) -> None:
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN", help="run folders (with results.json)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics (default: the headline panel that the run measured)")
    p.add_argument("--last", action="store_true", help="only each chain's last generation")
    p.add_argument("--timing", action="store_true", help="print where each run's time went instead of the table")


def cell(value, interval: Optional[list]) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if interval and len(interval) == 2 and all(isinstance(x, (int, float)) for x in interval):
        return f"{value:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]"
    return f"{value:.4g}"


def default_metrics(results: dict) -> List[str]:
    from madbench.headline import HEADLINE

    seen = {m for chain in results["chains"] for g in chain["generations"] for m in g["metrics"]}
    return [m for m in HEADLINE if m in seen] or sorted(seen)[:4]


def table(results: dict, metrics: List[str], last: bool = False) -> str:
    header = ["chain", "gen", *metrics, "synthetic share", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for chain in results["chains"]:
        generations = chain["generations"][-1:] if last else chain["generations"]
        for g in generations:
            intervals = g.get("intervals") or {}
            cells = [chain["id"], str(g["generation"])] + [cell(g["metrics"].get(m), intervals.get(m)) for m in metrics]
            cells += [f"{g.get('synthetic_fraction', 0):.2f}", f"{g.get('seconds') or 0:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shares(run_dir: Path, results: dict) -> str:
    from madbench.results.run_store import LM_EVAL, LM_EVAL_RESULTS, RunStore

    store = RunStore(run_dir)
    total, lm_eval, n = dict.fromkeys(PHASES, 0.0), 0.0, 0
    for chain in results["chains"]:
        for gen in chain["generations"]:
            timing = gen.get("timing") or {}
            if gen["generation"] == 0 or not timing:
                continue
            n += 1
            for phase in PHASES:
                total[phase] += timing.get(phase, 0.0)
            lm = store.gen_dir(chain["id"], gen["generation"]) / LM_EVAL / LM_EVAL_RESULTS
            if lm.is_file():
                lm_eval += json.loads(lm.read_text())["madbench"]["seconds"]
    seconds = sum(total.values())
    if not n:
        return f"{run_dir}: no generation recorded its timing"
    parts = ", ".join(f"{phase} {100 * value / seconds:.0f}%" for phase, value in total.items())
    return f"{run_dir}: {n} generations; {parts}; lm-eval {100 * lm_eval / seconds:.0f}%; {seconds / n:.0f} s per generation"


def main(args) -> int:
    from madbench.errors import MadbenchError
    from madbench.results.collect import load_results
    from madbench.results.run_store import RunStore

    for run_dir in args.run_dirs:
        if not RunStore(run_dir).results.is_file():
            raise MadbenchError(f"{run_dir} has no results.json; give a run folder (made by madbench run)")
        results = load_results(run_dir)
        if args.timing:
            print(shares(Path(run_dir), results))
            continue
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else default_metrics(results)
        git = (results.get("environment") or {}).get("git") or {}
        processor = (results.get("environment") or {}).get("processor") or {}
        print(f"{run_dir}: wall time {results.get('wall_seconds') or 0:.0f} s; commit {git.get('commit')}; "
              f"processor {processor.get('kind') or processor.get('name') or '?'}; cells: value [95% estimator interval]")
        print(table(results, metrics, args.last))
    return 0
