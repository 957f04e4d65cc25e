"""Print a per-generation Markdown table of chosen metrics for every chain of a run.

    python scripts/generation_table.py runs/default --metrics perplexity,distinct_2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from madbench.results import load_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metrics", default="perplexity,distinct_2")
    args = parser.parse_args()
    results = load_results(args.run_dir)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    print(f"wall time: {results.get('wall_seconds') or 0:.0f} s; commit {results['environment']['git'].get('commit')}")
    header = ["chain", "gen"] + metrics + ["synthetic share", "seconds"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for chain in results["chains"]:
        for g in chain["generations"]:
            values = [g["metrics"].get(m) for m in metrics]
            cells = [chain["id"], str(g["generation"])] + [f"{v:.4g}" if isinstance(v, (int, float)) else "-" for v in values]
            cells += [f"{g['synthetic_fraction']:.2f}", f"{g['seconds']:.0f}"]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
