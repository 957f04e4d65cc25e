"""`madbench table`: the per-generation table carries each value with its stored 95% interval, and timing shares."""

from __future__ import annotations

import json
import re

import pytest
from conftest import madbench

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes


def test_table_cells_are_the_results_values_with_their_intervals(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    proc = madbench("table", smoke_run, "--metrics", "perplexity,distinct_2", "--last", check=True)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and not line.startswith("| chain")]
    assert len(rows) == len(results["chains"])  # --last: one row per chain
    for chain, row in zip(results["chains"], rows):
        last = chain["generations"][-1]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:2] == [chain["id"], str(last["generation"])]
        for metric, text in zip(("perplexity", "distinct_2"), cells[2:4]):
            value, low, high = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text).groups())
            lo, hi = last["intervals"][metric]
            assert abs(value - last["metrics"][metric]) <= 1e-3 * abs(last["metrics"][metric])
            assert abs(low - lo) <= 1e-3 * abs(lo) and abs(high - hi) <= 1e-3 * abs(hi) and low <= value <= high


def test_timing_shares_sum_to_the_whole_and_a_missing_run_is_one_line(smoke_run, tmp_path):
    proc = madbench("table", smoke_run, "--timing", check=True)
    shares = [int(x) for x in re.findall(r"(?:train|evaluate_model|sample|evaluate_samples) (\d+)%", proc.stdout)]
    assert len(shares) == 4 and 97 <= sum(shares) <= 103, proc.stdout  # rounded shares of one total
    bad = madbench("table", tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "has no results.json" in bad.stderr
