"""`madbench regress`: the verdict logic, and a real reduced benchmark that must fail when a mitigation is sabotaged.

    .venv/bin/python -m pytest -q tests/test_regress.py
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import madbench

import numpy as np
import pytest

from madbench.experiments.drift import FAMILY_ALPHA, drift_verdict, read_reference
from madbench.experiments.regress import config_changes, evaluate


def _chain(mits, seed, ppl, d2=0.5):
    gens = [{"generation": 0, "metrics": {"perplexity": 100.0, "distinct_2": 0.6, "type_token_ratio": 0.2}},
            {"generation": 1, "metrics": {"perplexity": ppl, "distinct_2": d2, "type_token_ratio": 0.2}}]
    return {"id": f"c{seed}{mits}", "regime": "fully_synthetic", "mode": "replace", "seed": seed,
            "mitigations": list(mits), "generations": gens}


def test_verdicts_need_a_margin_beyond_the_seed_spread_and_a_stable_reference():
    base = [_chain((), s, p) for s, p in enumerate([130.0, 131.0, 129.0])]
    clear = [_chain(("mix_real",), s, p) for s, p in enumerate([110.0, 111.0, 109.0])]
    blurred = [_chain(("accumulate",), s, p) for s, p in enumerate([128.0, 140.0, 117.0])]
    rows = evaluate({"chains": base + clear + blurred}, ["mix_real", "accumulate"], None)
    by = {r["mitigation"]: r for r in rows}
    assert by["baseline"]["ok"]  # 100 -> 130: the baseline collapses
    assert by["mix_real"]["ok"] and by["mix_real"]["verdict"].startswith("beats")
    assert not by["accumulate"]["ok"] and "seed spread" in by["accumulate"]["verdict"]
    ref = {"format": 2, "seeds": [100, 101, 102],
           "values": {"baseline": {"perplexity": [129.5, 130.5, 130.0], "distinct_2": [0.5] * 3, "type_token_ratio": [0.2] * 3},
                      "mix_real": {"perplexity": [140.0, 141.0, 139.0], "distinct_2": [0.5] * 3, "type_token_ratio": [0.2] * 3}}}
    rows = evaluate({"chains": base + clear}, ["mix_real"], ref)
    drift = {(r["mitigation"], r["metric"]): r for r in rows if r.get("drift")}
    assert len(drift) == 6
    # 3 seeds a side cannot reach a 1% family-wise level (the smallest p is 0.1): not even a 20% shift could
    # fail, so no row is a check: "not tested", counted as not passed, naming the seeds it would need
    assert all(not r["ok"] and r["untested"] for r in drift.values())
    assert "the smallest p is 0.1, not below the level 0.0017; run at least 18 seeds" in drift[("mix_real", "perplexity")]["verdict"]
    from madbench.experiments.regress import EXIT_REGRESSED, exit_code
    assert exit_code(rows, protocol=False) == EXIT_REGRESSED


@pytest.mark.slow  # about 60 s of simulation
def test_drift_passes_a_new_draw_and_fails_a_shift_of_a_few_percent_that_the_seeds_resolve():
    rng = np.random.default_rng(1)
    ref = list(rng.normal(130.0, 2.0, 8))
    level = FAMILY_ALPHA / 18  # the full benchmark: 6 groups x 3 metrics
    alarms = sum(not drift_verdict(ref, list(rng.normal(130.0, 2.0, 8)), "perplexity", level)[0] for _ in range(200))
    assert alarms <= 2  # honest draws: at most ~1% / 18 of single checks
    ok, verdict = drift_verdict(ref, list(rng.normal(130.0 * 1.06, 2.0, 8)), "perplexity", level)  # +6%, 4 SD
    assert not ok and verdict.startswith("FAIL: drift")
    # significant but below the minimum effect (a library rounding change): not a regression
    ok, verdict = drift_verdict([100.0 + i * 0.01 for i in range(8)], [101.0 + i * 0.01 for i in range(8)], "perplexity", level)
    assert ok and "p=0.00016" in verdict


def test_config_changes_ignore_new_keys_but_not_changed_values():
    a = {"loop": {"generations": 4}, "eval": {"metrics": ["perplexity"]}}
    assert config_changes(a, {"loop": {"generations": 4, "new_key": 1}, "eval": {"metrics": ["perplexity"]}}) == []
    assert config_changes(a, {"loop": {"generations": 3}, "eval": {"metrics": ["perplexity"]}}) == ["loop.generations"]
    # seeds and the mitigation's own parameters are not the protocol: another draw, or a sabotaged mitigation, is compared
    assert config_changes({**a, "seed": 0, "mitigation_params": {}},
                          {**a, "seed": 5, "mitigation_params": {"mix_real": {"fraction": 0}}}) == []


DRAWS = Path(__file__).parent / "data" / "regress_draws"


def _draw(record: dict) -> dict:
    """results.json-shaped chains from a per-seed record written by `madbench regress --update --reference FILE`."""
    chains = []
    for label, metrics in record["values"].items():
        for i, seed in enumerate(record["seeds"]):
            last = {m: values[i] for m, values in metrics.items()}
            chains.append({"seed": seed, "regime": "fully_synthetic", "mode": "replace",
                           "mitigations": [] if label == "baseline" else label.split("+"),
                           "generations": [{"generation": 0, "metrics": {"perplexity": 100.0}}, {"generation": 6, "metrics": last}]})
    return {"chains": chains}


def _record(name: str) -> dict:
    return json.loads((DRAWS / name).read_text())


def _pooled(*records) -> dict:
    """One reference from several seed sets (as `--update --seeds 0 ... 15` writes it), groups all share."""
    labels = set.intersection(*(set(r["values"]) for r in records))
    return {**records[0], "seeds": [s for r in records for s in r["seeds"]],
            "values": {label: {m: [v for r in records for v in r["values"][label][m]] for m in records[0]["values"][label]}
                       for label in labels}}


def _drift(rows) -> dict:
    return {(r["mitigation"], r["metric"]): r for r in rows if r.get("drift")}


@pytest.mark.slow
def test_drift_check_on_real_draws_of_the_full_benchmark():
    """Recorded full-benchmark runs (commands in tests/data/regress_draws/README.md) against a 16-seed reference
    that shares no seed with the run (as the packaged reference, seeds 100-115, and the check, seeds 0-7): a third
    seed set passes, mix_real at half its fraction and mix_real sabotaged to fraction 0 fail."""
    reference = _pooled(_record("seeds0-7.json"), _record("seeds8-15.json"))
    for other in ("seeds16-23.json", "seeds8-15.json"):  # honest new draws (the second's seeds leave the reference)
        drift = _drift(evaluate(_draw(_record(other)), ["mix_real"], reference))
        assert len(drift) == 6 and all(r["ok"] for r in drift.values()), drift
    # and an 8-seed reference against another 8 seeds
    assert all(r["ok"] for r in _drift(evaluate(_draw(_record("seeds8-15.json")), ["mix_real"], _record("seeds0-7.json"))).values())

    # the weakened draws use seeds 0-7, so their reference is the 16 seeds 8-23
    reference = _pooled(_record("seeds8-15.json"), _record("seeds16-23.json"))
    drift = _drift(evaluate(_draw(_record("mix_real_half.json")), ["mix_real"], reference))
    assert all(drift[("baseline", m)]["ok"] for m in ("perplexity", "distinct_2", "type_token_ratio"))
    assert not drift[("mix_real", "perplexity")]["ok"], drift[("mix_real", "perplexity")]

    # fraction 0 leaves every mix unchanged, so the sabotaged chain is the baseline chain seed for seed (the
    # end-to-end test below checks that identity on a real run)
    sabotaged = _record("seeds0-7.json")
    sabotaged["values"] = {"baseline": sabotaged["values"]["baseline"], "mix_real": sabotaged["values"]["baseline"]}
    rows = evaluate(_draw(sabotaged), ["mix_real"], reference)
    assert not next(r for r in rows if r["metric"] == "perplexity (target)")["ok"]
    assert not _drift(rows)[("mix_real", "perplexity")]["ok"]


@pytest.mark.slow
def test_regress_fails_and_names_a_sabotaged_mitigation(tmp_path):
    reduced = ["--seeds", "0", "--generations", "2", "--mitigations", "mix_real", "accumulate",
               # a reduced benchmark: the small tiny model and half the data keep this test near a minute a run
               "model.tiny_size=small", "data.train_docs=32", "sampling.num_samples=32"]
    ref = tmp_path / "reference.json"
    made = madbench("regress", "--output-dir", tmp_path / "intact", "--update", "--reference", ref, *reduced, timeout=900)
    assert "madbench regress: wrote" in made.stdout, made.stdout[-3000:] + made.stderr[-3000:]
    assert made.returncode == 0, made.stdout[-3000:]  # writing the reference succeeded: --update exits 0
    record = read_reference(ref)  # a reference of one's own, written where the user said, with its processor
    assert record["seeds"] == [0] and record["processor"]["kind"] and len(record["values"]["mix_real"]["perplexity"]) == 1

    out = tmp_path / "regress"
    proc = madbench("regress", "--output-dir", out, "--reference", ref, *reduced[:-3], "mitigation_params.mix_real.fraction=0",
                    *reduced[-3:], timeout=900)
    # seed 0 is the reference's, on its processor kind and versions: it must reproduce exactly, and the
    # sabotaged mix_real does not: a drift FAIL, exit 1 (regressed), not 3 (not yet better)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAIL: not reproduced: seed 0" in proc.stdout and "(exit 1: regressed)" in proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if "(target)" in line}
    assert "FAIL" in lines["mix_real"]  # fraction 0: identical to the baseline
    assert "beats" in lines["accumulate"]  # the check discriminates: an intact mitigation still passes
    summary = proc.stdout.strip().splitlines()[-1]
    assert "checks passed in" in summary and "mix_real perplexity (target)" in summary
    # the protocol is the reference's (a mitigation parameter is the method under test): the drift section runs,
    # and on this processor the untouched chains reproduce the reference exactly while the sabotaged one does not
    assert "drift check skipped" not in proc.stdout and "same processor kind; 2/3 chains reproduce" in proc.stdout
    chains = {"+".join(c["mitigations"]) or "baseline": c for c in json.loads((out / "results.json").read_text())["chains"]}
    assert chains["mix_real"]["generations"][-1]["metrics"] == chains["baseline"]["generations"][-1]["metrics"]


def test_exit_codes_separate_regressed_from_not_yet_better():
    from madbench.experiments.regress import EXIT_NOT_YET_BETTER, EXIT_PASSED, EXIT_REGRESSED, exit_code

    target = {"metric": "perplexity (target)", "ok": False, "verdict": "FAIL: better but within seed spread (+1%)"}
    drift = {"metric": "perplexity", "ok": False, "verdict": "FAIL: drifted", "drift": True}
    passed = {"metric": "perplexity gen0->last", "ok": True, "verdict": "collapses"}
    assert exit_code([passed], protocol=False) == EXIT_PASSED
    assert exit_code([passed, target], protocol=False) == EXIT_NOT_YET_BETTER == 3
    assert exit_code([passed, target, drift], protocol=False) == EXIT_REGRESSED == 1
    assert exit_code([passed, {**target, "verdict": "FAIL: no results"}], protocol=False) == EXIT_REGRESSED
    assert exit_code([passed, target], protocol=True) == EXIT_REGRESSED  # the packaged benchmark: unchanged


def test_a_plugins_regress_gets_its_own_default_folder_and_a_missing_reference_is_one_line(tmp_path):
    from madbench.experiments.regress import default_output

    assert default_output(["mix_real", "accumulate"]) == "runs/regress"
    proc = madbench("regress", "--mitigations", "mix_real", "--reference", tmp_path / "mine.json", "--seeds", "0")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"madbench regress --update --reference {tmp_path / 'mine.json'}" in proc.stderr
    help_text = madbench("regress", "--help").stdout  # the help names the packaged file where it is
    assert "madbench/experiments/regress_reference.json" in help_text and "madbench/regress_reference.json" not in help_text


def test_drift_check_leaves_the_runs_own_seeds_out_of_the_reference():
    """On the reference's processor a shared seed reproduces its reference value exactly, which breaks the
    permutation test's independence (issue 27): the check uses only the reference seeds the run did not."""
    from madbench.experiments.drift import independent

    reference = _pooled(_record("seeds0-7.json"), _record("seeds8-15.json"))
    assert independent([1.0, 2.0, 3.0], [0, 1, 2], {1}) == [1.0, 3.0]
    rows = _drift(evaluate(_draw(_record("seeds0-7.json")), ["mix_real"], reference))
    assert len(rows) == 6 and all(r["ok"] for r in rows.values())
    assert all("8 seed(s) shared with the reference left out of it" in r["verdict"] for r in rows.values())
    # the reference side holds seeds 8-15 only: its mean is the mean of seeds8-15.json
    other = _record("seeds8-15.json")["values"]["baseline"]["perplexity"]
    assert rows[("baseline", "perplexity")]["reference"] == pytest.approx(sum(other) / len(other))


def test_the_plugin_recipes_seed_counts_can_fail_a_doctored_reference():
    """docs/ci-for-plugins.md: 8 reference seeds against 6 in CI. The example's real reference with every value
    x1.5 must fail the drift check; 2 seeds against 2 (the old recipe) can fail nothing and says so."""
    from madbench.experiments.drift import drift_rows
    from madbench.experiments.regress import EXIT_REGRESSED, exit_code, groups, last_value

    def evaluate(results, _mitigations, reference):  # the drift rows only: the plug-in is not installed here
        return drift_rows(groups(results), reference, last_value)

    root = Path(__file__).resolve().parents[1]
    ref = read_reference(root / "examples" / "madbench-length-filter" / "madbench-reference.json")
    assert ref["seeds"] == list(range(100, 108))
    # a stand-in CI run on seeds 0-5: the reference's own first six values (a real draw of this benchmark)
    run = {"chains": [{"id": f"{label}{i}", "seed": i, "mitigations": [] if label == "baseline" else [label],
                       "generations": [{"metrics": {m: ref["values"][label][m][i] for m in ref["values"][label]}}]}
                      for label in ref["values"] for i in range(6)]}
    honest = [r for r in evaluate(run, ["length_filter"], ref) if r.get("drift")]
    assert honest and all(r["ok"] for r in honest)
    doctored = {**ref, "values": {g: {m: [v * 1.5 for v in vs] for m, vs in ms.items()} for g, ms in ref["values"].items()}}
    rows = evaluate(run, ["length_filter"], doctored)
    drift = [r for r in rows if r.get("drift")]
    assert all(not r["ok"] and r["verdict"].startswith("FAIL: drift") for r in drift)
    assert exit_code(rows, protocol=False) == EXIT_REGRESSED  # `|| [ $? -eq 3 ]` does not turn it into a pass
    few = {**doctored, "seeds": doctored["seeds"][:2],
           "values": {g: {m: vs[:2] for m, vs in ms.items()} for g, ms in doctored["values"].items()}}
    small = {"chains": [c for c in run["chains"] if c["seed"] < 2]}
    drift = [r for r in evaluate(small, ["length_filter"], few) if r.get("drift")]
    assert all(not r["ok"] and r["untested"] and "smallest p is 0.33" in r["verdict"] for r in drift)
