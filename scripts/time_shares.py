"""Where a run's generations spent their time: training, evaluation (lm-eval inside it), sampling.

    python scripts/time_shares.py runs/default runs/mitigations

Sums ``generations[].timing`` of results.json over every generation >= 1 that recorded it
(generation 0 reuses the shared training), and lm-eval's own seconds from
``<generation>/lm_eval/results.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from madbench.results import load_results  # noqa: E402
from madbench.run_store import LM_EVAL, RunStore  # noqa: E402

PHASES = ("train", "evaluate_model", "sample", "evaluate_samples")


def shares(run_dir: Path) -> str:
    results = load_results(run_dir)
    total, lm_eval, n = dict.fromkeys(PHASES, 0.0), 0.0, 0
    for chain in results["chains"]:
        for gen in chain["generations"]:
            timing = gen.get("timing") or {}
            if gen["generation"] == 0 or not timing:
                continue
            n += 1
            for phase in PHASES:
                total[phase] += timing.get(phase, 0.0)
            lm = RunStore(run_dir).gen_dir(chain["id"], gen["generation"]) / LM_EVAL / "results.json"
            if lm.is_file():
                lm_eval += json.loads(lm.read_text())["madbench"]["seconds"]
    seconds = sum(total.values())
    if not n:
        return f"{run_dir}: no generation recorded its timing"
    parts = ", ".join(f"{phase} {100 * value / seconds:.0f}%" for phase, value in total.items())
    return f"{run_dir}: {n} generations; {parts}; lm-eval {100 * lm_eval / seconds:.0f}%; {seconds / n:.0f} s per generation"


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["runs/default"]:
        print(shares(Path(arg)))
