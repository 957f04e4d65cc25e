"""Verdicts with power (madbench/reporting/verdicts.py) on constructed inputs whose answer is known.

    .venv/bin/python -m pytest -q -p no:xdist tests/test_verdicts.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from madbench.config.comparisons import Comparison, needs_generations
from madbench.errors import MadbenchError
from madbench.reporting import verdicts as v


def _seeds(values):
    return dict(enumerate(values))


def test_holm_matches_a_hand_computation():
    # sorted: 0.001 x5 = 0.005, 0.04 x4 = 0.16, 0.2 x3 = 0.6, 0.5 x2 = 1.0, 0.8 x1 -> running max 1.0
    adjusted, levels = v.holm([0.2, 0.001, 0.5, 0.04, 0.8])
    assert adjusted == pytest.approx([0.6, 0.005, 1.0, 0.16, 1.0])
    # step 1 (0.001 <= 0.05/5) rejects; step 2 (0.04 > 0.05/4) stops: it and every later one get 0.05/4
    assert levels == pytest.approx([0.0125, 0.01, 0.0125, 0.0125, 0.0125])
    assert v.holm([None, 0.01]) == ([None, 0.02], [0.05, 0.05 / 2])  # a missing p counts in m


def test_holm_rejects_the_one_true_effect_among_nulls():
    rng = np.random.default_rng(0)
    family = [{"name": "effect", "diffs": _seeds(2.0 + 0.3 * rng.standard_normal(6)), "direction": "greater", "margin": 0.5}]
    family += [{"name": f"null{i}", "diffs": _seeds(rng.standard_normal(6)), "direction": "greater", "margin": 0.5}
               for i in range(5)]
    out = v.judge(family)
    assert out[0]["verdict"] == "reproduced" and out[0]["p_holm"] < 0.001
    assert out[0]["ci_holm"][0] > 0 and out[0]["alpha_holm"] == pytest.approx(0.05 / 6)
    assert all(not o["verdict"] in ("reproduced", "opposite") for o in out[1:])
    # the adjusted p-values are the hand formula: the running max of (m - j + 1) p_(j)
    ps = sorted((o["p"], i) for i, o in enumerate(out))
    running = 0.0
    for j, (p, i) in enumerate(ps):
        running = max(running, min(1.0, (6 - j) * p))
        assert out[i]["p_holm"] == pytest.approx(running)


def test_an_adjusted_interval_excludes_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(1)
    for _ in range(100):
        family = [{"name": str(k), "diffs": _seeds(rng.normal(rng.choice([0.0, 1.0]), 1.0, 4)), "direction": "greater",
                   "margin": 0.3} for k in range(4)]
        for o in v.judge(family):
            excludes = o["ci_holm"][0] > 0 or o["ci_holm"][1] < 0
            assert excludes == (o["p_holm"] <= 0.05), o


def test_tost_declares_a_constructed_null_equivalent_and_refuses_an_effect():
    null = [0.05, -0.04, 0.02, -0.03, 0.01, -0.01]
    effect = [0.9, 1.1, 1.0, 0.95, 1.05, 1.0]
    t_null, t_effect = v.t_test(null), v.t_test(effect)
    assert v.tost_p(t_null, margin=0.2) < 0.001
    assert v.tost_p(t_effect, margin=0.2) > 0.5
    # TOST at alpha is the (1 - 2 alpha) interval lying inside the margin
    ci90 = v.interval(t_null, 0.10)
    assert -0.2 < ci90[0] and ci90[1] < 0.2
    [word] = v.judge([{"name": "n", "diffs": _seeds(null), "direction": "greater", "margin": 0.2}])
    assert word["verdict"] == "no effect"


@pytest.mark.parametrize("margin", [0, -0.1, True, "1"])
def test_a_margin_of_zero_or_below_is_refused_in_one_line(margin):
    with pytest.raises(MadbenchError) as err:
        v.judge([{"name": "x", "diffs": {0: 1.0, 1: 2.0}, "direction": "greater", "margin": margin}])
    assert "margin must be above 0" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MadbenchError, match="margin must be above 0"):
        Comparison("x", "fully_synthetic/replace", None, "perplexity", margin=margin)


def test_the_verdict_words_follow_the_rules():
    rows = v.judge([
        {"name": "up", "diffs": _seeds([2.0, 2.1, 1.9, 2.05]), "direction": "greater", "margin": 0.5},
        {"name": "down", "diffs": _seeds([-2.0, -2.1, -1.9, -2.05]), "direction": "greater", "margin": 0.5},
        {"name": "flat", "diffs": _seeds([0.01, -0.01, 0.02, -0.02]), "direction": "less", "margin": 0.5},
        {"name": "noisy", "diffs": _seeds([1.0, -0.5, 2.0, -1.0]), "direction": "greater", "margin": 0.5},
    ])
    words = {r["name"]: r["verdict"] for r in rows}
    assert words == {"up": "reproduced", "down": "opposite", "flat": "no effect", "noisy": "not resolved at 4 seeds"}
    noisy = rows[3]
    assert noisy["seeds_needed"] > 4 and "seeds would resolve it" in v.needed_text(noisy) and "80% power" in v.needed_text(noisy)
    assert all(r["seeds_needed"] is None for r in rows[:3])
    # the paper's direction "less": the same downward difference is a reproduction
    [less] = v.judge([{"name": "d", "diffs": _seeds([-2.0, -2.1, -1.9, -2.05]), "direction": "less", "margin": 0.5}])
    assert less["verdict"] == "reproduced"
    # one seed: no spread, never resolved, and no seed count can be computed from it
    [one] = v.judge([{"name": "o", "diffs": {0: 5.0}, "direction": "greater", "margin": 0.5}])
    assert one["verdict"] == "not resolved at 1 seed" and one["seeds_needed"] is None


def test_seeds_needed_matches_the_textbook_and_a_simulation():
    # one-sample / paired t, two-sided alpha 0.05, 80% power: d = 1 needs 10, d = 0.5 needs 34 (Cohen 1988; G*Power)
    assert v.seeds_needed(1.0, 1.0, 0.05) == 10
    assert v.seeds_needed(0.5, 1.0, 0.05) == 34
    # simulated power of the paired t at the returned n reaches 80%, at n - 1 it does not
    from scipy.stats import t

    rng = np.random.default_rng(2)
    effect, sd, alpha = 0.8, 1.0, 0.05 / 3
    n = v.seeds_needed(effect, sd, alpha)

    def simulated(k):
        x = rng.normal(effect, sd, (20000, k))
        stat = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(k))
        return float(np.mean(np.abs(stat) > t.ppf(1 - alpha / 2, k - 1)))

    assert simulated(n) >= 0.79 and simulated(n - 1) < 0.81


def test_tost_power_is_a_lower_bound_of_the_simulated_power():
    from scipy.stats import t

    rng = np.random.default_rng(3)
    effect, sd, margin, alpha, k = 0.1, 1.0, 0.8, 0.05, 20
    x = rng.normal(effect, sd, (20000, k))
    se = x.std(1, ddof=1) / math.sqrt(k)
    crit = t.ppf(1 - alpha, k - 1)
    simulated = np.mean(((x.mean(1) + margin) / se > crit) & ((x.mean(1) - margin) / se < -crit))
    bound = v.tost_power(effect, sd, k, alpha, margin)
    assert 0.3 < bound <= simulated + 0.01


def test_slope_rests_on_generations_after_the_first():
    # a one-off penalty at generation 1, flat after: no trend; a steady rise: its slope
    assert v.slope({0: 25.5, 1: 28.0, 2: 28.0, 3: 28.0}) == pytest.approx(0.0)
    assert v.slope({0: 10.0, 1: 11.0, 2: 13.0, 3: 15.0}) == pytest.approx(2.0)
    assert v.slope({0: 1.0, 1: 2.0}) is None
    assert v.paired({0: 3.0, 1: 4.0, 2: float("nan")}, {0: 1.0, 2: 1.0}) == {0: 2.0}
    assert v.paired({0: 3.0}, None) == {0: 3.0}


def test_a_comparison_spec_refuses_what_cannot_be_computed():
    c = Comparison("rise", "fully_synthetic/replace", None, "perplexity", claim="trend",
                   treatment_where={"sampling.num_beams": 5})
    assert c.treatment_where == (("sampling.num_beams", 5),) and needs_generations(c) == 2
    assert c.arm_label("treatment") == "fully_synthetic/replace (sampling.num_beams=5)" and c.arm_label("control") == "0"
    for bad, field in [(dict(claim="slope"), "claim"), (dict(direction="up"), "direction"), (dict(generation=0), "generation"),
                       (dict(treatment="fully_synthetic"), "chain label")]:
        kwargs = {"name": "x", "treatment": "fully_synthetic/replace", "control": None, "metric": "perplexity", **bad}
        with pytest.raises(MadbenchError, match=field):
            Comparison(**kwargs)
