"""A run folder grows by seeds and mitigation sets: re-running it with one more runs only the new chains, and
anything else that differs is still refused (madbench/run_folder.py).

    .venv/bin/python -m pytest -q tests/test_run_folder.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, madbench, one_line_error
from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.run_folder import added_chains

SMALL = ["loop.regimes=[fully_synthetic]", "loop.generations=1", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]"]


def smoke(*overrides):
    return build_config(PRESETS.get("smoke")(), None, [*SMALL, *overrides])


@pytest.mark.parametrize("new,added", [
    (["loop.mitigations=[none,mix_real,dedup]"], {"seeds": [], "mitigations": [("dedup",)]}),
    (["loop.mitigations=[dedup,mix_real,none]"], {"seeds": [], "mitigations": [("dedup",)]}),  # order is not a change
    (["loop.mitigations=[none,mix_real,dedup]", "mitigation_params.dedup.threshold=0.5"],
     {"seeds": [], "mitigations": [("dedup",)]}),  # the new one's own params
    (["loop.mitigations=[none,mix_real]", "loop.seeds=[0,3]"], {"seeds": [3], "mitigations": []}),
    (["loop.mitigations=[none,mix_real,dedup]", "loop.seeds=[2,0]"], {"seeds": [2], "mitigations": [("dedup",)]}),
    (["loop.mitigations=[none,mix_real]", "loop.seeds=[1]"], None),  # seed 0's finished chains would be dropped
    (["loop.mitigations=[none,mix_real]", "monitor.rule=any_leading"], None),  # nothing added (monitor is not hashed anyway)
    (["loop.mitigations=[none,dedup]"], None),  # mix_real's finished chains would be dropped
    (["loop.mitigations=[none,mix_real,dedup]", "mitigation_params.mix_real.fraction=0.2"], None),  # a kept set's params
    (["loop.mitigations=[none,mix_real,dedup]", "loop.generations=2"], None),
    (["loop.mitigations=[none,mix_real,dedup]", "sampling.temperature=0.9"], None),
])
def test_what_counts_as_only_adding_seeds_or_mitigation_sets(new, added):
    saved = json.loads(json.dumps(smoke("loop.mitigations=[none,mix_real]").to_dict()))  # as config.json holds it
    assert added_chains(saved, smoke(*new)) == added


def test_a_run_folder_grows_by_a_mitigation_set_and_keeps_its_finished_chains(tmp_path, madbench_cache):
    out = tmp_path / "run"
    madbench("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "--output-dir", out, check=True)
    baseline = out / "chains" / "fully_synthetic-replace-s0"
    before = {p: p.stat().st_mtime_ns for p in baseline.rglob("*") if p.is_file()}
    first = json.loads((out / "results.json").read_text())
    proc = cli("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none,mix_real]", "--output-dir", out, "--dry-run")
    assert "extends it with the mitigation set(s) mix_real" in proc.stdout and "fully_synthetic-replace-s0: 2/2 generations done" in proc.stdout
    proc = madbench("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none,mix_real]", "--output-dir", out, check=True)
    assert "extending" in proc.stdout and "mix_real" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in baseline.rglob("*") if p.is_file()} == before  # nothing recomputed
    results = json.loads((out / "results.json").read_text())
    assert [c["id"] for c in results["chains"]] == ["fully_synthetic-replace-s0", "fully_synthetic-replace-s0-mix_real"]
    assert results["complete"] and results["chains"][0] == first["chains"][0]
    assert results["config_hash"] == json.loads((out / "config.json").read_text())["config_hash"] != first["config_hash"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    extend = [e for e in events if e["event"] == "extend"]
    assert extend == [{**extend[0], "from_config_hash": first["config_hash"], "added": [["mix_real"]], "added_seeds": []}]
    # anything else that differs is refused, one line, before anything runs
    proc = cli("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none,mix_real]", "loop.generations=2", "--output-dir", out)
    one_line_error(proc, "different config", "--resume")
    proc = cli("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "--output-dir", out)
    one_line_error(proc, "different config")  # dropping a set would leave its chains behind
    assert Path(out / "chains" / "fully_synthetic-replace-s0-mix_real").is_dir()


def test_a_run_folder_grows_by_a_seed_and_the_new_chain_is_the_one_a_fresh_run_computes(tmp_path, madbench_cache):
    grown, fresh = tmp_path / "grown", tmp_path / "fresh"
    madbench("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "loop.seeds=[0]", "--output-dir", grown, check=True)
    before = {p: p.stat().st_mtime_ns for p in (grown / "chains").rglob("*") if p.is_file()}
    proc = cli("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "loop.seeds=[0,1]", "--output-dir", grown, "--dry-run")
    assert "extends it with seed(s) 1" in proc.stdout and "fully_synthetic-replace-s1: 0/2 generations done" in proc.stdout
    madbench("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "loop.seeds=[0,1]", "--output-dir", grown, check=True)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # seed 0 untouched
    madbench("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "loop.seeds=[1]", "--output-dir", fresh, check=True)
    chains = {c["id"]: c for c in json.loads((grown / "results.json").read_text())["chains"]}
    alone = json.loads((fresh / "results.json").read_text())["chains"]
    assert sorted(chains) == ["fully_synthetic-replace-s0", "fully_synthetic-replace-s1"]
    # a chain depends on its own seed only: seed 1 grown into the folder equals seed 1 run alone
    assert [g["metrics"]["perplexity"] for g in chains["fully_synthetic-replace-s1"]["generations"]] == \
        [g["metrics"]["perplexity"] for g in alone[0]["generations"]]
    events = [json.loads(line) for line in (grown / "events.jsonl").read_text().splitlines()]
    assert [e["added_seeds"] for e in events if e["event"] == "extend"] == [[1]]
    proc = cli("run", "--preset", "smoke", *SMALL, "loop.mitigations=[none]", "loop.seeds=[1]", "--output-dir", grown)
    one_line_error(proc, "different config")  # dropping seed 0 would leave its chains behind
