"""madbench.reporting.stats against numpy/scipy computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from madbench.reporting import stats


def test_seed_summary_matches_scipy_t_interval():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 12):
        xs = rng.normal(3.0, 2.0, size=n)
        s = stats.seed_summary(list(xs))
        low, high = sst.t.interval(0.95, n - 1, loc=xs.mean(), scale=sst.sem(xs))
        assert s["n"] == n
        assert s["mean"] == pytest.approx(xs.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(xs.std(ddof=1), rel=1e-12)
        assert (s["ci95_low"], s["ci95_high"]) == pytest.approx((low, high), rel=1e-10)


def test_seed_summary_drops_missing_and_handles_one_and_zero():
    s = stats.seed_summary([None, float("nan"), 4.5])
    assert s == {"mean": 4.5, "std": 0.0, "n": 1, "ci95_low": 4.5, "ci95_high": 4.5}
    assert stats.seed_summary([1.0, None, 3.0])["n"] == 2
    empty = stats.seed_summary([None])
    assert empty["n"] == 0 and empty["mean"] is None and empty["ci95_low"] is None


def test_seed_summary_interval_is_students_t_at_any_seed_count():
    """scipy is a dependency: the t quantile comes from it for every n (there was a 30-entry table for 'no scipy')."""
    for xs in ([1.0, 2.0, 4.0, 7.0], [float(v % 7) + 0.1 * v for v in range(40)]):
        s = stats.seed_summary(xs)
        low, high = sst.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=sst.sem(xs))
        assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def _hedges(a, b):
    a, b = np.asarray(a), np.asarray(b)
    na, nb = len(a), len(b)
    sp = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return (b.mean() - a.mean()) / sp * (1 - 3 / (4 * (na + nb) - 9))


def test_compare_matches_scipy_welch_and_hedges():
    a = [10.0, 11.0, 10.5, 12.0]
    b = [6.5, 7.0, 7.5]
    c = stats.compare(a, b, higher_is_better=False)
    assert c["diff"] == pytest.approx(np.mean(b) - np.mean(a))
    assert c["welch_p"] == pytest.approx(sst.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)
    assert c["hedges_g"] == pytest.approx(_hedges(a, b), rel=1e-10)
    assert c["separated"] is True and c["better"] is True
    assert stats.compare(a, b, higher_is_better=True)["better"] is False
    assert stats.compare(a, b, higher_is_better=None)["better"] is None


def test_compare_overlap_and_single_seed():
    c = stats.compare([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], higher_is_better=True)
    assert c["separated"] is False and c["better"] is True  # direction only, not significance
    one = stats.compare([2.0], [2.5], higher_is_better=True)
    assert one["welch_p"] is None and one["hedges_g"] is None
    assert one["separated"] is False and one["better"] is True  # one seed: a direction, never separated
    assert stats.compare([2.0], [2.0], higher_is_better=True)["separated"] is False
    assert stats.compare([], [1.0], True)["diff"] is None


def _chain(cid, regime, seed, values, mitigations=(), mode="replace"):
    return {"id": cid, "regime": regime, "mode": mode, "seed": seed, "mitigations": list(mitigations),
            "complete": True,
            "generations": [{"generation": g, "metrics": {"perplexity": v, "distinct_2": None if v is None else v / 10}}
                            for g, v in enumerate(values)]}


def test_aggregate_chains_groups_pooled_seeds_and_partial_chains():
    chains = [
        _chain("fs-s0", "fully_synthetic", 0, [10.0, 12.0, 15.0]),
        _chain("fs-s1", "fully_synthetic", 1, [11.0, 13.0]),  # partial: stopped after generation 1
        _chain("fs-s2", "fully_synthetic", 2, [10.5, None, 14.0]),
        _chain("fsd-s0", "fully_synthetic", 0, [10.0, 11.0, 11.5], mitigations=["dedup", "filter"]),
    ]
    groups = stats.aggregate_chains(chains)
    assert [g["label"] for g in groups] == ["fully_synthetic/replace", "fully_synthetic/replace+dedup+filter"]
    base = groups[0]
    assert base["seeds"] == [0, 1, 2] and base["mitigations"] == []
    ppl = {r["generation"]: r for r in base["metrics"]["perplexity"]}
    assert [ppl[g]["n"] for g in (0, 1, 2)] == [3, 2, 2]  # s1 stopped, s2 missed gen 1
    assert ppl[0]["mean"] == pytest.approx(np.mean([10.0, 11.0, 10.5]))
    assert ppl[2]["ci95_high"] == pytest.approx(sst.t.interval(0.95, 1, loc=14.5, scale=sst.sem([15.0, 14.0]))[1])
    assert stats.group_key(chains[3]) == ("fully_synthetic", "replace", ("dedup", "filter"))


def test_last_generation_table_pools_runs():
    run_a = {"chains": [_chain("fs-s0", "fully_synthetic", 0, [10.0, 12.0, 15.0])]}
    run_b = {"chains": [_chain("fs-s1", "fully_synthetic", 1, [10.0, 13.0, 17.0]),
                        _chain("fd-s1", "fresh_data", 1, [10.0, 10.5])]}
    rows = stats.last_generation_table([run_a, run_b], ["perplexity", "missing_metric"])
    assert [r["label"] for r in rows] == ["fully_synthetic/replace", "fresh_data/replace"]
    cell = rows[0]["metrics"]["perplexity"]
    assert rows[0]["generation"] == 2 and cell["n"] == 2 and cell["mean"] == pytest.approx(16.0)
    assert rows[1]["generation"] == 1 and rows[1]["metrics"]["perplexity"]["mean"] == 10.5
    assert rows[0]["metrics"]["missing_metric"]["mean"] is None
    assert stats.last_generation_table(run_a, ["perplexity"])[0]["metrics"]["perplexity"]["n"] == 1
    assert math.isclose(rows[0]["metrics"]["perplexity"]["std"], np.std([15.0, 17.0], ddof=1))


def test_permutation_p_is_exact_over_all_splits_and_relative():
    """Against a brute-force enumeration of every split, on log values (so a shift is a ratio)."""
    import itertools

    a, b = [100.0, 104.0, 98.0, 101.0, 99.0], [108.0, 103.0, 110.0, 107.0]
    logs = np.log(a + b)
    observed = logs[5:].mean() - logs[:5].mean()
    splits = [(np.delete(logs, list(i)).mean(), logs[list(i)].mean()) for i in itertools.combinations(range(9), 4)]
    greater = np.mean([y - x >= observed - 1e-12 for x, y in splits])
    less = np.mean([y - x <= observed + 1e-12 for x, y in splits])
    assert stats.permutation_p(a, b) == pytest.approx(min(1.0, 2 * min(greater, less)))
    assert stats.permutation_p([x * 3 for x in a], [x * 3 for x in b]) == pytest.approx(stats.permutation_p(a, b))
    assert stats.relative_shift(a, b) == pytest.approx(math.exp(np.log(b).mean() - np.log(a).mean()) - 1)
    assert stats.permutation_p([1.0, 1.0], [1.0, 1.0]) == 1.0 and stats.permutation_p([1.0], [2.0, 3.0]) is None


@pytest.mark.slow  # about 100 s of simulation
def test_permutation_false_alarm_rate_is_its_level_on_heavy_tails_and_it_sees_a_real_shift():
    """The drift check's stated false-alarm rate holds on heavy-tailed seeds (8 vs 8), and a 2-SD shift is seen."""
    rng = np.random.default_rng(0)
    level, trials = 0.05, 300
    same = [stats.permutation_p(list(np.exp(rng.standard_t(2, 8))), list(np.exp(rng.standard_t(2, 8)))) for _ in range(trials)]
    assert sum(p < level for p in same) / trials <= level + 0.03  # binomial slack
    shifted = [stats.permutation_p(list(rng.normal(100, 1, 8)), list(rng.normal(102, 1, 8))) for _ in range(60)]
    assert sum(p < level for p in shifted) >= 50


def test_shares_seed_intervals_stay_in_unit_range_at_two_seeds():
    """Two seeds give a t multiplier of 12.7: a share's raw interval crosses 0 and 1; the declared range clips it."""
    chains = []
    for seed, (below, above) in enumerate([(0.02, 0.90), (0.06, 0.99)]):
        chain = _chain(f"fs-s{seed}", "fully_synthetic", seed, [100.0, 120.0 + seed])
        chain["generations"][1]["metrics"].update({"tail_below_g0_p05": below, "tail_above_g0_p95": above})
        chains.append(chain)
    raw = stats.seed_summary([0.02, 0.06])
    assert raw["ci95_low"] < 0  # unclipped without a range: the case the clip is for
    (group,) = stats.aggregate_chains(chains)
    for name in ("tail_below_g0_p05", "tail_above_g0_p95"):
        (row,) = [r for r in group["metrics"][name] if r["generation"] == 1]
        assert row["n"] == 2
        assert 0.0 <= row["ci95_low"] <= row["mean"] <= row["ci95_high"] <= 1.0, (name, row)
    (below,) = [r for r in group["metrics"]["tail_below_g0_p05"] if r["generation"] == 1]
    assert below["ci95_low"] == 0.0 and below["ci95_high"] == pytest.approx(raw["ci95_high"])
    (above,) = [r for r in group["metrics"]["tail_above_g0_p95"] if r["generation"] == 1]
    assert above["ci95_high"] == 1.0
    # perplexity declares (1, None): its t-interval at these values is far from 1 and stays the plain t-interval
    (ppl,) = [r for r in group["metrics"]["perplexity"] if r["generation"] == 1]
    assert ppl["ci95_low"] == pytest.approx(sst.t.interval(0.95, 1, loc=120.5, scale=sst.sem([120.0, 121.0]))[0])


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 of m=3: 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> monotone 0.06
    assert stats.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]


def test_one_seed_is_never_separated_and_two_seeds_need_the_difference_interval_to_exclude_zero():
    assert stats.compare([1.0], [5.0], False)["separated"] is False  # a point against a point: no interval at all
    a, b = [1.0, 1.1], [3.0, 3.1]
    c = stats.compare(a, b, True)
    se = math.sqrt(np.var(a, ddof=1) / 2 + np.var(b, ddof=1) / 2)
    half = sst.t.ppf(0.975, 2.0) * se  # equal variances and sizes: Welch's df is 2
    assert c["diff_ci95"] == pytest.approx([2.0 - half, 2.0 + half]) and c["separated"] is True
    noisy = stats.compare([1.0, 2.0], [2.9, 3.1], True)  # t-intervals overlap, difference interval holds 0
    assert noisy["diff_ci95"][0] < 0 < noisy["diff_ci95"][1] and noisy["separated"] is False
