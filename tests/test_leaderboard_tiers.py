"""Tiers within a track on constructed cases: clearly better, tied, clearly worse (madbench/leaderboard/tiers.py).

    .venv/bin/python -m pytest -q tests/test_leaderboard_tiers.py
"""

from __future__ import annotations

import pytest
from conftest import ROOT

from madbench.leaderboard import tiers
from madbench.leaderboard.tracks_view import track_rows


def row(label, effects):
    return {"label": label, "per_seed": dict(enumerate(effects))}


def test_clearly_better_tied_and_clearly_worse_fall_in_three_tiers():
    rows = [row("worse", [-1.0, -1.5, -0.5, -1.2]),       # near the baseline: far from the best
            row("best", [-20.0, -21.0, -19.0, -20.5]),
            row("tied", [-19.0, -21.5, -18.0, -20.0]),     # within the seed spread of the best
            row("middle", [-10.0, -11.0, -9.5, -10.5])]
    out = tiers.assign_tiers(rows, higher_is_better=False)  # perplexity: a negative effect is better
    assert [(r["label"], r["tier"]) for r in out] == [("best", 1), ("tied", 1), ("middle", 2), ("worse", 3)]
    assert out[0]["vs_best_p"] is None and out[1]["vs_best_p"] > 0.05 and out[1]["tier_best"] == "best"
    assert out[3]["tier_best"] == "worse"  # alone in the last round: the best of what was left


def test_holm_keeps_a_borderline_difference_in_the_best_tier():
    # 'edge' alone against 'best' would be rejected at 5%; with three comparisons Holm needs p <= 0.05 / 3 first
    p = tiers.difference_p({0: 0.0, 1: 1.7, 2: 0.4}, {0: -2.0, 1: -1.5, 2: -1.2})
    assert 0.05 / 3 < p < 0.05
    rows = [row("best", [-2.0, -1.5, -1.2]), row("edge", [0.0, 1.7, 0.4]),
            row("t1", [-1.9, -1.4, -1.3]), row("t2", [-2.1, -1.6, -1.0])]
    out = {r["label"]: r["tier"] for r in tiers.assign_tiers(rows, higher_is_better=False)}
    assert out == {"best": 1, "edge": 1, "t1": 1, "t2": 1}
    assert tiers.holm_rejects([0.001, 0.04, 0.03]) == [True, False, False]
    assert tiers.holm_rejects([0.001, 0.02, 0.04]) == [True, True, True]


def test_higher_is_better_and_one_seed():
    better = [row("up", [10.0, 11.0, 9.0]), row("flat", [0.1, -0.2, 0.0])]
    assert [(r["label"], r["tier"]) for r in tiers.assign_tiers(better, higher_is_better=True)] == [("up", 1), ("flat", 2)]
    single = [row("a", [-30.0]), row("b", [0.0])]  # one seed: nothing can be told apart
    assert {r["tier"] for r in tiers.assign_tiers(single, higher_is_better=False)} == {1}


def test_paired_effect_and_its_interval():
    per_seed = tiers.paired_effect({0: 90.0, 1: 96.8, 2: 89.0, 3: 70.0}, {0: 100.0, 1: 110.0, 2: 100.0})
    assert per_seed == pytest.approx({0: -10.0, 1: -12.0, 2: -11.0})  # seed 3 has no baseline: dropped
    s = tiers.effect_summary(per_seed, higher_is_better=False)
    assert s["effect_pct"] == pytest.approx(-11.0) and s["n"] == 3 and s["better"] is True
    lo, hi = s["ci95_pct"]
    assert lo < s["effect_pct"] < hi < 0 and s["separated"]


def _chains(mits, values, d2, synthetic=1.0):
    return [{"id": f"s{s}-{'+'.join(mits)}", "regime": "fully_synthetic", "mode": "replace", "seed": s,
             "mitigations": list(mits), "complete": True,
             "generations": [{"generation": 0, "synthetic_fraction": 0.0, "metrics": {"perplexity": 100.0, "distinct_2": 0.6}},
                             {"generation": 1, "synthetic_fraction": synthetic, "metrics": {"perplexity": p, "distinct_2": d}}]}
            for s, (p, d) in enumerate(zip(values, d2))]


def test_track_rows_show_the_panel_and_the_own_target_with_tiers():
    data = {"track": "tiny-fs", "content_hash": "sha256:" + "ab" * 32, "metrics_info": {},
            "chains": (_chains((), [130, 132, 128, 131], [0.50, 0.52, 0.49, 0.51])
                       + _chains(("mix_real",), [118, 119, 117, 118], [0.50, 0.52, 0.49, 0.51], synthetic=0.9)
                       + _chains(("dedup",), [131, 130, 129, 133], [0.60, 0.61, 0.59, 0.62])
                       + _chains(("watermark_filter",), [103, 104, 102, 103], [0.5, 0.5, 0.5, 0.5], synthetic=0.5))}
    rows = track_rows([data], "tiny-fs")
    assert [(r["mitigation"], r["tier"], r["within_budget"]) for r in rows] == [
        ("mix_real", 1, True), ("dedup", 2, True), ("watermark_filter", 3, False)]  # over budget: tiered after
    dedup = rows[1]
    assert list(dedup["panel"]) == ["perplexity", "distinct_2"]  # no tail or task metric measured: not shown
    (target,) = dedup["targets"]
    assert target["metric"] == "distinct_2" and target["separated"] and target["better"]  # its own aim, met
    assert target["effect_pct"] == pytest.approx(100 * (0.605 / 0.505 - 1), rel=0.01)
    assert not dedup["panel"]["perplexity"]["separated"]


def test_seeds_for_power_matches_the_paired_t_tables():
    # d = |mean| / sd = 1: 10 seeds for 80% power at alpha 0.05 (the exact noncentral-t answer); d = 0.5: 34
    half = 2 ** -0.5  # two values mean -+ half have sd 1
    assert tiers.seeds_for_power({0: 1 - half, 1: 1 + half}) == 10
    assert tiers.seeds_for_power({0: -0.5 - half, 1: -0.5 + half}) == 34
    assert tiers.seeds_for_power({0: 3.0}) is None and tiers.seeds_for_power({0: 1.0, 1: -1.0}) is None
    assert tiers.seeds_for_power({0: 5.0, 1: 5.0}) == 2
    assert tiers.seeds_for_power({0: 1 - half, 1: 1 + half}, effect=-0.5) == 34  # a given effect, the measured sd


def test_conservative_seed_count_asks_for_the_intervals_near_end():
    # 10 seeds, mean 10, sd 10: the 95% interval is 10 -+ 2.262 * 10 / sqrt(10) = [2.85, 17.15]; its near end
    # is d = 0.285 (about 99 seeds for 80% power), where the measured mean (d = 1) asks for 10
    per_seed = dict(enumerate([10 + x for x in (-15, -10, -5, -5, 0, 0, 5, 5, 10, 15)]))
    sd = (sum((v - 10) ** 2 for v in per_seed.values()) / 9) ** 0.5
    per_seed = {k: 10 + (v - 10) * 10 / sd for k, v in per_seed.items()}  # rescaled to sd 10 exactly
    assert tiers.seeds_for_power(per_seed) == 10
    near = tiers.conservative_seeds_for_power(per_seed)
    assert 95 <= near <= 102 and near == tiers.seeds_for_power(per_seed, effect=10 - 2.2622 * 10 / 10 ** 0.5)
    assert tiers.conservative_seeds_for_power({k: -v for k, v in per_seed.items()}) == near  # either sign
    assert tiers.conservative_seeds_for_power({0: 1.0, 1: -0.5, 2: 2.0}) is None  # the interval holds 0


def test_the_tiny_fs_seeds_separate_what_the_regression_check_separates():
    """The regression check separates mix_real, accumulate, watermark_filter (perplexity) and surprise_filter (its
    target, distinct-2) from the baseline; at the track's 6 seeds the shipped tiny-fs submission does too, and the
    measured spread says how many seeds each needs for 80% power (scripts/track_seeds.py prints the table)."""
    import json
    import subprocess
    import sys

    sub = ROOT / "leaderboard" / "submissions" / "track-tiny-fs-tiny-26ef58669eed.json"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "track_seeds.py"), str(sub), "--json"],
                         capture_output=True, text=True, check=True).stdout
    got = {(r["mitigation"], r["metric"]): r for r in (json.loads(line) for line in out.splitlines() if line)}
    for key in [("mix_real", "perplexity (target)"), ("accumulate", "perplexity (target)"),
                ("watermark_filter", "perplexity (target)"), ("surprise_filter", "distinct_2 (target)")]:
        assert got[key]["separated"] and got[key]["seeds"] == 6 and got[key]["seeds_for_power"] <= 6, got[key]
    assert not got["surprise_filter", "perplexity"]["separated"]  # the filter's perplexity cost is within the noise
