"""`madbench regress`: the verdict logic, and a real reduced benchmark that must fail when a mitigation is sabotaged.

    .venv/bin/python -m pytest -q tests/test_regress.py
"""

from __future__ import annotations

from conftest import madbench

from madbench.regress import config_changes, evaluate


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
    ref = {"values": {"baseline": {"perplexity": 130.0, "distinct_2": 0.5, "type_token_ratio": 0.2},
                      "mix_real": {"perplexity": 140.0, "distinct_2": 0.5, "type_token_ratio": 0.2}},
           "tolerance": {"perplexity": 0.05}}
    rows = evaluate({"chains": base + clear}, ["mix_real"], ref)
    drift = {(r["mitigation"], r["metric"]): r for r in rows if "(target)" not in r["metric"] and "->" not in r["metric"]}
    assert drift[("baseline", "perplexity")]["ok"]
    assert not drift[("mix_real", "perplexity")]["ok"] and "drift" in drift[("mix_real", "perplexity")]["verdict"]


def test_config_changes_ignore_new_keys_but_not_changed_values():
    a = {"loop": {"generations": 4}, "eval": {"metrics": ["perplexity"]}}
    assert config_changes(a, {"loop": {"generations": 4, "new_key": 1}, "eval": {"metrics": ["perplexity"]}}) == []
    assert config_changes(a, {"loop": {"generations": 3}, "eval": {"metrics": ["perplexity"]}}) == ["loop.generations"]


def test_regress_fails_and_names_a_sabotaged_mitigation(tmp_path):
    out = tmp_path / "regress"
    proc = madbench("regress", "--seeds", "0", "--generations", "2", "--mitigations", "mix_real", "accumulate",
                    "--output-dir", out, "mitigation_params.mix_real.fraction=0",
                    # a reduced benchmark: the small tiny model and half the data keep this test near a minute
                    "model.tiny_size=small", "data.train_docs=32", "sampling.num_samples=32", timeout=900)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if "(target)" in line}
    assert "FAIL" in lines["mix_real"]  # fraction 0: identical to the baseline
    assert "beats" in lines["accumulate"]  # the check discriminates: an intact mitigation still passes
    summary = proc.stdout.strip().splitlines()[-1]
    assert "checks passed in" in summary and "mix_real perplexity (target)" in summary
    assert "drift check skipped" in proc.stdout  # a reduced benchmark is not compared with the reference
    assert (out / "results.json").is_file()
