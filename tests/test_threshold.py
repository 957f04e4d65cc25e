"""`madbench threshold`: the bisection, bad input, and a real small search on the tiny model (resumed).

    .venv/bin/python -m pytest -q tests/test_threshold.py
"""

from __future__ import annotations

import json

import pytest

from madbench.experiments.threshold import bisect

from conftest import madbench


def test_bisection_brackets_the_smallest_holding_share():
    asked = []

    def holds(share):
        asked.append(share)
        return share >= 0.37

    estimate, bracket = bisect(holds, 0.0, 0.9, 4)
    assert asked == [0.9, 0.0, 0.45, 0.225, 0.3375, 0.3938]
    assert estimate == 0.3938 and bracket == (0.3375, 0.3938)
    assert bisect(lambda s: False, 0.0, 0.9, 3) == (None, (0.9, 1.0))
    assert bisect(lambda s: True, 0.1, 0.9, 3) == (0.1, (0.1, 0.1))


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["--regime", "fully_synthetic"], "has no real share to search"),
    (["--low", "0.5", "--high", "0.4"], "must satisfy 0 <= low < high <= 1"),
    (["--high", "1.5"], "must satisfy 0 <= low < high <= 1"),
    (["--metric", "mauve"], "--metric mauve is not in eval.metrics"),
    (["data.max_docs=100", "loop.generations=3"], "fresh_data needs 66 new real documents"),
])
def test_bad_searches_fail_before_training(tmp_path, args, message):
    proc = madbench("threshold", "--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity]", *args,
                    "--output-dir", tmp_path / "th")
    assert proc.returncode == 2 and proc.stderr.startswith("madbench: error: ") and message in proc.stderr, proc.stderr[-1500:]
    assert not any((tmp_path / "th").glob("real-*/gen0"))


@pytest.mark.slow
def test_small_search_records_every_point_and_resumes(tmp_path):
    out = tmp_path / "th"
    args = ["threshold", "--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity]", "loop.generations=1",
            "--seeds", "0", "--steps", "1", "--low", "0", "--high", "0.8", "--tolerance", "0.5", "--output-dir", out]
    madbench(*args, check=True)
    data = json.loads((out / "threshold.json").read_text())
    assert data["complete"] and data["regime"] == "fresh_data"
    shares = [p["real_share"] for p in data["points"]]
    assert shares[0] == 0.0 and shares[-1] == 0.8 and shares == sorted(shares)
    for p in data["points"]:
        results = json.loads((out / f"real-{p['real_share']:.4f}" / "results.json").read_text())
        assert results["config"]["loop"]["real_fraction"] == p["real_share"]
        first, last = (results["chains"][0]["generations"][g]["metrics"]["perplexity"] for g in (0, -1))
        assert p["ratios"] == [pytest.approx(last / first)] and p["holds"] == (last / first <= 1.5)
    holding = [p["real_share"] for p in data["points"] if p["holds"]]
    assert data["estimate"] == (min(holding) if holding else None)
    # generation 0 was trained once and copied: the same adapter in every point
    events = [json.loads(line) for p in data["points"] for line in
              (out / f"real-{p['real_share']:.4f}" / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "gen0_trained" for e in events) == 1
    before = sum(e["event"] == "generation_done" for e in events)
    madbench(*args, check=True)  # resumed: nothing recomputed, same answer
    again = json.loads((out / "threshold.json").read_text())
    same = [(p["real_share"], p["ratios"], p["holds"]) for p in data["points"]]
    assert again["estimate"] == data["estimate"] and [(p["real_share"], p["ratios"], p["holds"]) for p in again["points"]] == same
    events = [json.loads(line) for p in data["points"] for line in
              (out / f"real-{p['real_share']:.4f}" / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "generation_done" for e in events) == before
