"""The monitor's alarm rules: a known change point is caught where it is, a stationary chain alarms at the set rate.

    OMP_NUM_THREADS=1 python -m pytest -q tests/test_monitoring.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from madbench.errors import MadbenchError
from madbench.monitoring import MONITOR_RULES, Alarm, ChainPanel
from madbench.monitoring.panel import Z95, attach_seed_noise, load_panels
from madbench.monitoring import get_rule, missing_metrics
from madbench.monitoring.rules import cusum_threshold


def panel_of(series: dict, se: dict, horizon: int, chain_id: str = "c") -> ChainPanel:
    """A panel whose every generation has the 95% interval value +/- 1.96 se (as results.json writes it)."""
    n = len(next(iter(series.values())))
    values = [{m: float(x[g]) for m, x in series.items()} for g in range(n)]
    intervals = [{m: [x[g] - Z95 * se[m], x[g] + Z95 * se[m]] for m, x in series.items()} for g in range(n)]
    return ChainPanel(chain_id, values, intervals, horizon=horizon)


def test_a_change_point_is_caught_at_its_generation():
    # distinct_2 flat for generations 0-2, then 8 standard errors lower from generation 3 on (a fall is collapse;
    # the change from generation 0 has sqrt(2) standard errors, so z = 5.7 > h = 3.9 + k at the first step)
    x = [0.6, 0.6, 0.6, 0.52, 0.52, 0.52]
    alarm = get_rule("cusum_distinct_2").first_alarm(panel_of({"distinct_2": x}, {"distinct_2": 0.01}, 5), 0.05)
    assert alarm is not None and alarm.generation == 3 and alarm.indicator == "distinct_2"
    # the same size of change the other way (more diversity) is not collapse: no alarm
    up = [0.6, 0.6, 0.6, 0.68, 0.68, 0.68]
    assert get_rule("cusum_distinct_2").first_alarm(panel_of({"distinct_2": up}, {"distinct_2": 0.01}, 5), 0.05) is None
    # a rise of self-BLEU is collapse; the combined rule names the indicator that fired
    both = panel_of({"distinct_2": [0.6] * 6, "self_bleu": [0.3, 0.3, 0.3, 0.3, 0.4, 0.4]},
                    {"distinct_2": 0.01, "self_bleu": 0.01}, 5)
    combined = get_rule("any_leading").first_alarm(both, 0.05)
    assert combined is not None and (combined.generation, combined.indicator) == (4, "self_bleu")


def test_a_small_steady_drift_accumulates_until_it_alarms():
    # 1.5 standard errors per generation: no single step is alarming, the CUSUM adds them up
    x = [0.6 - 0.015 * g for g in range(8)]
    alarm = get_rule("cusum_distinct_2").first_alarm(panel_of({"distinct_2": x}, {"distinct_2": 0.01}, 7), 0.05)
    assert alarm is not None and 2 <= alarm.generation <= 4


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_stationary_chains_alarm_at_the_set_rate(alpha):
    rng = np.random.default_rng(2026)  # not the calibration's seed
    horizon, chains, se = 5, 3000, 0.01
    rule = get_rule("cusum_distinct_2")
    fired = 0
    for _ in range(chains):
        x = 0.6 + se * rng.standard_normal(horizon + 1)
        fired += rule.first_alarm(panel_of({"distinct_2": x}, {"distinct_2": se}, horizon), alpha) is not None
    rate = fired / chains
    band = 3 * np.sqrt(alpha * (1 - alpha) / chains)
    assert abs(rate - alpha) < band, (rate, alpha)


def test_the_combined_rule_keeps_its_rate_over_correlated_indicators():
    rng = np.random.default_rng(7)
    horizon, chains, se = 4, 1500, 0.01
    rule = get_rule("any_leading")
    fired = 0
    for _ in range(chains):
        common = rng.standard_normal(horizon + 1)  # distinct-1..3 share most of their noise
        series = {m: 0.5 + se * (0.8 * common + 0.6 * rng.standard_normal(horizon + 1))
                  for m in ("distinct_1", "distinct_2", "distinct_3")}
        fired += rule.first_alarm(panel_of(series, {m: se for m in series}, horizon), 0.1) is not None
    assert 0.02 < fired / chains < 0.1 + 3 * np.sqrt(0.09 / chains)  # Bonferroni: at most alpha, not far below


def test_the_threshold_grows_with_the_horizon_and_shrinks_with_alpha():
    assert cusum_threshold(0.05, 2) < cusum_threshold(0.05, 6) < cusum_threshold(0.01, 6)
    with pytest.raises(MadbenchError, match="between 0 and 1"):
        cusum_threshold(1.5, 4)


def test_seed_noise_scales_a_submission_without_intervals():
    chains = [ChainPanel(f"s{s}", [{"distinct_2": v0}, {"distinct_2": v0 - 0.2}], horizon=1, info={"model": "m", "seed": s})
              for s, v0 in enumerate([0.60, 0.62, 0.58])]
    attach_seed_noise(chains)
    assert chains[0].noise == "seeds" and chains[0].seed_noise["distinct_2"] == pytest.approx(0.02)
    z = chains[0].z_scores("distinct_2")[0]
    assert z == pytest.approx(0.2 / (0.02 * np.sqrt(2)))
    lone = ChainPanel("x", [{"distinct_2": 0.6}, {"distinct_2": 0.4}], horizon=1, info={"model": "other", "seed": 0})
    attach_seed_noise([lone])
    assert lone.z_scores("distinct_2") is None  # one seed, no intervals: no scale, no alarm


def test_a_plug_in_rule_joins_the_registry_and_a_wrong_name_gets_a_hint():
    @MONITOR_RULES.register("test_ttr_drop")
    class TtrDrop:
        needs = ("type_token_ratio",)

        def first_alarm(self, panel, alpha):
            x = [v["type_token_ratio"] for v in panel.values]
            g = next((g for g in range(1, len(x)) if x[g] < 0.8 * x[0]), None)
            return None if g is None else Alarm("test_ttr_drop", g, "type_token_ratio", x[g] / x[0], 0.8)

    try:
        p = ChainPanel("c", [{"type_token_ratio": t} for t in (0.7, 0.65, 0.5)], horizon=2)
        assert get_rule("test_ttr_drop").first_alarm(p, 0.05).generation == 2
        assert missing_metrics(get_rule("cusum_self_bleu"), p) == ["self_bleu"]
        with pytest.raises(MadbenchError, match="did you mean 'any_leading'"):
            get_rule("any_leadin")
    finally:
        MONITOR_RULES.remove("test_ttr_drop")


def test_bad_inputs_get_one_line(tmp_path):
    with pytest.raises(MadbenchError, match="has no results.json"):
        load_panels([str(tmp_path)])
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(MadbenchError, match="not a madbench results"):
        load_panels([str(bad)])
    bad.write_text(json.dumps({"chains": "no"}))
    with pytest.raises(MadbenchError, match="no 'chains' list"):
        load_panels([str(bad)])


def test_bad_monitor_keys_fail_before_anything_runs():
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    smoke = PRESETS.get("smoke")()
    with pytest.raises(MadbenchError, match="did you mean 'any_leading'"):
        build_config(smoke, None, ["monitor.rule=any_leadin"])
    with pytest.raises(MadbenchError, match="monitor.alpha must be a false-alarm rate"):
        build_config(smoke, None, ["monitor.rule=any_leading", "monitor.alpha=1.5"])
    with pytest.raises(MadbenchError, match="reads tail_w1_log_ppl, which eval.metrics does not compute"):
        build_config(smoke, None, ["monitor.rule=cusum_tail_w1_log_ppl", "eval.metrics=[perplexity,distinct_2]"])
    a = build_config(smoke, None, ["monitor.rule=any_leading"])
    assert a.hash() == build_config(smoke, None, []).hash()  # a watch on the run: a resume may change it


ALWAYS_RULE = '''
from madbench.monitoring import MONITOR_RULES, Alarm

@MONITOR_RULES.register("test_always")
class Always:
    needs = ("distinct_2",)
    def first_alarm(self, panel, alpha):
        return Alarm("test_always", 1, "distinct_2", 1.0, 0.0) if len(panel.values) > 1 else None
'''


@pytest.mark.slow
def test_the_loop_callback_stops_a_run_once_and_a_resume_finishes_it(tmp_path):
    from conftest import madbench, one_line_error

    plugin = tmp_path / "always.py"
    plugin.write_text(ALWAYS_RULE)
    out = tmp_path / "run"
    args = ["run", "--plugin", plugin, "--preset", "smoke", "--output-dir", out, "loop.regimes=[fully_synthetic]",
            "loop.generations=2", "eval.metrics=[perplexity,distinct_2]", "eval.tasks=[]",
            "monitor.rule=test_always", "monitor.stop=true"]
    stopped = madbench(*args)
    one_line_error(stopped, "monitor: fully_synthetic-replace-s0: test_always fired at generation 1",
                   "stopped by monitor.stop=true", "madbench run --resume")
    assert (out / "chains" / "fully_synthetic-replace-s0" / "gen_001" / "meta.json").is_file()
    assert not (out / "chains" / "fully_synthetic-replace-s0" / "gen_002").exists()
    resumed = madbench("run", "--plugin", plugin, "--resume", out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "warning: monitor: fully_synthetic-replace-s0: test_always fired at generation 1" in resumed.stdout + resumed.stderr
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_scoring_counts_lead_time_on_degrading_chains_and_false_alarms_on_holding_ones():
    from madbench.monitoring.score import score

    def chain(cid, seed, ppl, d2):
        p = panel_of({"perplexity": ppl, "distinct_2": d2}, {"perplexity": 1.0, "distinct_2": 0.01}, len(ppl) - 1, cid)
        p.info = {"model": "m", "regime": cid.split("-")[0], "mode": "replace", "mitigations": [], "seed": seed, "source": "x"}
        return p

    panels = [
        # collapses: distinct-2 falls at generation 1, perplexity passes +10% at generation 3 (lead 2)
        chain("fs-s0", 0, [100, 101, 104, 112, 120], [0.6, 0.5, 0.45, 0.4, 0.4]),
        # collapses, but the indicator never moves: a miss, charged as an alarm after generation 4 (lead 3 - 5 = -2)
        chain("fs-s1", 1, [100, 102, 106, 111, 118], [0.6] * 5),
        # holds, twice; the second's indicator drifts anyway: one false alarm in two
        chain("fresh-s0", 0, [100, 99, 98, 99, 98], [0.6] * 5),
        chain("fresh-s1", 1, [100, 99, 98, 97, 98], [0.6, 0.55, 0.5, 0.5, 0.5]),
    ]
    rows, counts = score(panels, ["cusum_distinct_2"], 0.05)
    assert counts == {"m": {"degrading": 2, "holding": 2, "mixed": 0}}
    (row,) = rows
    assert (row["degrading"], row["warned_in_time"], row["missed"], row["median_lead_fired"]) == (2, 1, 1, 2)
    assert row["median_lead"] == 0  # median of 2 and -2
    assert (row["holding"], row["false_alarms"], row["false_alarm_rate"]) == (2, 1, 0.5)


def test_monitor_verb_on_a_submission_and_its_bad_input(tmp_path):
    from conftest import ROOT, cli, one_line_error

    track = ROOT / "leaderboard/archive/track-tiny-fs-tiny-2b5b44f45927.json"  # the scored table of docs/monitoring.md
    out = cli("monitor", track, "--rule", "cusum_distinct_2")
    assert out.returncode == 0, out.stderr
    assert "fully_synthetic-replace-s0 (" in out.stdout and "scale: seeds" in out.stdout
    assert "cusum_distinct_2" in out.stdout and "fires at generation" in out.stdout
    one_line_error(cli("monitor", track, "--rule", "cusum_tail_w1_log_ppl"), "reads tail_w1_log_ppl", "eval.metrics")
    one_line_error(cli("monitor", ROOT / "leaderboard/submissions/smoke-tiny-761528f493e4.json"), "no 95% intervals and one seed")
    one_line_error(cli("monitor", tmp_path), "has no results.json")
    scored = cli("monitor", "--score", track, "--rule", "any_leading", "--output-dir", tmp_path / "s")
    assert scored.returncode == 0, scored.stderr
    assert "| any_leading | tiny-base | 12 |" in scored.stdout
    assert (tmp_path / "s" / "lead_vs_false_alarms.png").stat().st_size > 1000


def write_run(path, chains, generations):
    """A results.json-shaped file of constructed chains (values with 95% intervals: the rules' own scale)."""
    doc = {"config": {"model": {"name": "m"}, "loop": {"generations": generations}, "sampling": {"num_samples": 64}},
           "chains": [{"id": cid, "regime": cid.split("-")[0], "mode": "replace", "seed": seed, "mitigations": [],
                       "generations": [{"generation": g, "metrics": {"perplexity": ppl[g], "distinct_2": d2[g]},
                                        "intervals": {"perplexity": [ppl[g] - 1, ppl[g] + 1],
                                                      "distinct_2": [d2[g] - 0.0196, d2[g] + 0.0196]}}
                                       for g in range(len(ppl))]} for cid, seed, ppl, d2 in chains]}
    path.write_text(json.dumps(doc))
    return path


def constructed(tmp_path, name, seeds, leads: bool):
    """Chains that degrade (perplexity +10% at generation 3) and chains that hold; distinct-2 falls from generation 1
    on the degrading ones only (``leads``) or on every chain (it tracks "fine-tuned again", not "degrading")."""
    rng = np.random.default_rng(sum(seeds))
    chains = []
    for s in seeds:
        fall = [0.6, 0.5, 0.45, 0.4, 0.4]
        flat = list(0.6 + 0.002 * rng.standard_normal(5))
        chains.append((f"fs-s{s}", s, [100, 102, 105, 112, 120], fall))
        chains.append((f"fresh-s{s}", s, [100, 99, 98, 99, 98], flat if leads else fall))
    return write_run(tmp_path / f"{name}.json", chains, 4)


def test_a_rule_that_truly_leads_beats_always_g1_out_of_sample(tmp_path):
    from conftest import cli

    select, scored = constructed(tmp_path, "a", range(0, 8), True), constructed(tmp_path, "b", range(8, 16), True)
    out = cli("monitor", "--score", scored, "--select-on", select, "--rule", "cusum_distinct_2", "--output-dir", tmp_path / "o")
    assert out.returncode == 0, out.stderr
    rows = {r["rule"]: r for r in json.loads((tmp_path / "o" / "monitor_score.json").read_text())["rows"]}
    assert set(rows) == {"cusum_distinct_2", "always_g1", "never"}  # the baselines are always scored
    assert rows["always_g1"]["j"] == 0 and rows["never"]["j"] == 0 and not rows["always_g1"]["useful"]
    assert rows["always_g1"]["median_lead"] == rows["always_g1"]["trivial_lead"] == 2  # onset - 1, by construction
    d2 = rows["cusum_distinct_2"]
    assert d2["j"] == 1.0 and d2["j_low"] > 0 and d2["p"] < 0.01 and d2["useful"] and d2["shuffled_j"] < 0.5
    assert "usable out of sample: cusum_distinct_2" in out.stdout


def test_a_rule_that_fires_on_holding_chains_too_ties_always_g1_and_is_not_named(tmp_path):
    from conftest import cli

    select, scored = constructed(tmp_path, "a", range(0, 8), False), constructed(tmp_path, "b", range(8, 16), False)
    out = cli("monitor", "--score", scored, "--select-on", select, "--rule", "cusum_distinct_2")
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("| cusum_distinct_2 |"))
    assert "| 0.00 (" in line and line.endswith("| no |")  # J 0: the tie with always_g1, in the table
    assert "no rule chosen" in out.stdout and "usable out of sample" not in out.stdout
    # the same chains in both sets are chosen on, never scored
    from conftest import one_line_error

    one_line_error(cli("monitor", "--score", scored, "--select-on", scored), "nothing is left to score on")
    one_line_error(cli("monitor", scored, "--split", "seeds"), "add --score")


@pytest.mark.parametrize("seeds", [3, 6])
def test_a_scale_from_few_seeds_keeps_the_set_false_alarm_rate(seeds):
    rng = np.random.default_rng(11)  # not the calibration's seed
    horizon, groups, alpha = 4, 700, 0.05
    rule, fired, total = get_rule("cusum_distinct_2"), 0, 0
    for _ in range(groups):
        chains = [ChainPanel(f"s{s}", [{"distinct_2": float(x)} for x in 0.6 + 0.01 * rng.standard_normal(horizon + 1)],
                             horizon=horizon, info={"model": "m", "seed": s}) for s in range(seeds)]
        attach_seed_noise(chains)
        fired += sum(rule.first_alarm(c, alpha) is not None for c in chains)
        total += seeds
    # without the few-seed bar the same chains fire at 0.13 (3 seeds) and 0.07 (6 seeds): docs/monitoring.md
    assert abs(fired / total - alpha) < 3 * np.sqrt(alpha * (1 - alpha) / groups), fired / total
