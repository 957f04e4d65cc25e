"""The ecosystem regime: K members learning from each other's samples; mixes, order, errors, a real run and resume.

    .venv/bin/python -m pytest -q tests/test_ecosystem.py
"""

from __future__ import annotations

import json
import signal

import pytest

from madbench.config.run_config import build_config
from madbench.data.corpus import Doc
from madbench.loop.ecosystem import metrics as ecosystem_metrics
from madbench.loop.ecosystem import EcosystemContext
from madbench.loop.runner import plan_chains, plan_steps
from madbench.config.presets import PRESETS
from madbench.loop.regimes import REGIMES

from conftest import madbench, signal_when, start_madbench


def ctx(generation, accumulate=False, real_source="fixed", members=3, train_docs=8):
    pool = [Doc(f"h{i:06d}", f"real {i}") for i in range(20)]
    fresh = [Doc(f"h{100 + i:06d}", f"fresh {i}") for i in range(40)]
    peers = {m: {g: [Doc(f"m{m}-g{g:03d}-{i:05d}", f"syn {m} {g} {i}") for i in range(6)] for g in range(generation)}
             for m in range(members)}
    return EcosystemContext(generation=generation, train_docs=train_docs, real_fraction=0.25, pool=pool, fresh=fresh,
                         synthetic=peers[0], accumulate=accumulate, peers=peers, real_source=real_source)


def test_shared_mix_takes_every_member_in_turn():
    mix = [d.id for d in REGIMES.get("ecosystem")(ctx(2))]
    assert mix[:2] == ["h000000", "h000001"]  # 25% real, the fixed set
    assert mix[2:] == ["m0-g001-00000", "m1-g001-00000", "m2-g001-00000", "m0-g001-00001", "m1-g001-00001", "m2-g001-00001"]


def test_fresh_real_part_and_accumulate():
    fresh = [d.id for d in REGIMES.get("ecosystem")(ctx(3, real_source="fresh")) if d.id.startswith("h")]
    assert fresh == ["h000104", "h000105"]  # generation 3's slice of 2
    grown = REGIMES.get("ecosystem")(ctx(3, accumulate=True))
    synthetic = [d.id for d in grown if d.id.startswith("m")]
    assert len(synthetic) == 3 * 3 * 6 and len(set(synthetic)) == len(synthetic)


def test_members_are_chains_run_generation_by_generation():
    cfg = build_config(PRESETS.get("smoke")(), None, ["loop.regimes=[fully_synthetic,ecosystem]", "loop.seeds=[0,1]",
                                                      "loop.ecosystem.members=3", "loop.generations=1"])
    chains = plan_chains(cfg)
    assert [c.id for c in chains if c.regime == "ecosystem"] == [
        "ecosystem-replace-s0", "ecosystem-replace-s1000", "ecosystem-replace-s2000",
        "ecosystem-replace-s1", "ecosystem-replace-s1001", "ecosystem-replace-s2001"]
    steps = [(c.id, g) for c, g in plan_steps(cfg, chains)]
    assert steps[:4] == [("fully_synthetic-replace-s0", 0), ("fully_synthetic-replace-s0", 1),
                         ("fully_synthetic-replace-s1", 0), ("fully_synthetic-replace-s1", 1)]
    members = [s for s in steps if s[0].startswith("ecosystem")]
    assert [g for _, g in members] == [0] * 6 + [1] * 6  # every member's generation g before any g + 1


def test_ecosystem_metrics_see_convergence():
    a = ["the lord said unto moses go down", "and the people rested on the seventh day", "blessed are the meek"]
    b = ["a quick brown fox jumps over the lazy dog", "stock prices fell sharply on monday", "compile the kernel again"]
    same = ecosystem_metrics({0: a, 1: list(a)})
    apart = ecosystem_metrics({0: a, 1: b})
    assert same["cross_self_bleu"] > apart["cross_self_bleu"]
    assert same["embedding_distance"] < apart["embedding_distance"]


SMALL = ["--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]", "loop.regimes=[ecosystem]",
         "loop.ecosystem.members=2", "loop.generations=1"]


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["loop.ecosystem.members=1"], "an ecosystem needs at least 2 members"),
    (["loop.ecosystem.real=fersh"], "did you mean 'fresh'"),
    (["loop.seeds=[1000]"], "seeds must be in [0, 1000)"),
    (["loop.ecosystem.lora_ranks=[8]"], "lists 1 ranks for 2 members"),
    (["loop.ecosystem.lora_ranks=[4,8]"], "starts with 4 but lora.r=16"),
    (["loop.ecosystem.real=fresh", "data.max_docs=60", "loop.generations=2"], "loop.ecosystem.real=fresh needs 24 new real"),
])
def test_bad_ecosystems_fail_before_training(tmp_path, args, message):
    out = tmp_path / "bad"
    proc = madbench("run", *SMALL, *args, "--output-dir", out)
    assert proc.returncode == 2 and proc.stderr.startswith("madbench: error: ") and message in proc.stderr, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr and not (out / "gen0").exists()


@pytest.mark.slow
def test_killed_ecosystem_resumes_to_the_same_results_and_members_keep_their_ranks(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = [*SMALL, "loop.ecosystem.lora_ranks=[16,4]"]
    madbench("run", *args, "--output-dir", whole, check=True)
    proc = start_madbench("run", *args, "--output-dir", killed)
    first = killed / "chains" / "ecosystem-replace-s0" / "gen_001" / "meta.json"
    signal_when(proc, first, signal.SIGKILL)
    assert not (killed / "chains" / "ecosystem-replace-s1000" / "gen_001" / "meta.json").exists()
    stamp = first.stat().st_mtime_ns
    madbench("run", "--resume", killed, check=True)
    assert first.stat().st_mtime_ns == stamp  # the finished member generation was not recomputed
    a, b = (json.loads((d / "results.json").read_text()) for d in (whole, killed))
    assert a["complete"] and b["complete"]
    assert {c["id"]: [g["metrics"] for g in c["generations"]] for c in a["chains"]} == \
        {c["id"]: [g["metrics"] for g in c["generations"]] for c in b["chains"]}
    assert a["ecosystems"] == b["ecosystems"] and [g["generation"] for g in a["ecosystems"][0]["generations"]] == [0, 1]
    assert a["ecosystems"][0]["members"] == ["ecosystem-replace-s0", "ecosystem-replace-s1000"]
    # both members trained generation 1 on one shared mix holding both members' generation-0 samples
    mixes = [json.loads((whole / "chains" / c / "gen_001" / "mix.json").read_text())["documents"]
             for c in ("ecosystem-replace-s0", "ecosystem-replace-s1000")]
    assert mixes[0] == mixes[1]
    assert {d["id"][:2] for d in mixes[0] if d["source"] == "synthetic"} == {"m0", "m1"}

    # members may have their own LoRA rank (loop.ecosystem.lora_ranks=[16,4])
    rank = lambda folder: json.loads((folder / "adapter" / "adapter_config.json").read_text())["r"]  # noqa: E731
    assert rank(whole / "gen0" / "seed0") == 16 and rank(whole / "gen0" / "seed1000") == 4
    assert rank(whole / "chains" / "ecosystem-replace-s0" / "gen_001") == 16
    assert rank(whole / "chains" / "ecosystem-replace-s1000" / "gen_001") == 4


def test_a_sweep_runs_an_ecosystem_as_one_job(tmp_path):
    from madbench.experiments.sweep import make_jobs

    cfg = build_config(PRESETS.get("smoke")(), None, ["loop.regimes=[fully_synthetic,ecosystem]", "loop.ecosystem.members=3"])
    gen0, jobs, _ = make_jobs([{"id": "v", "config": cfg, "chains": plan_chains(cfg)}], tmp_path)
    assert sorted(j["seed"] for j in gen0) == [0, 1000, 2000]  # each member has its own generation 0
    assert {j["id"]: [c["id"] for c in j["chains"]] for j in jobs} == {
        "v/fully_synthetic-replace-s0": ["fully_synthetic-replace-s0"],
        "v/ecosystem-replace-s0": ["ecosystem-replace-s0", "ecosystem-replace-s1000", "ecosystem-replace-s2000"]}


@pytest.mark.slow
def test_an_ecosystem_of_three_members_and_one_base_seed_is_one_unit(tmp_path):
    """The members of one base seed share their mixes: group statistics count them as n=1, spread reported apart."""
    from madbench.reporting.report import write_report
    from madbench.reporting.stats import last_generation_table

    out = tmp_path / "eco"
    madbench("run", *SMALL, "loop.ecosystem.members=3", "--output-dir", out, check=True)
    members = ["ecosystem-replace-s0", "ecosystem-replace-s1000", "ecosystem-replace-s2000"]
    mixes = [json.loads((out / "chains" / c / "gen_001" / "mix.json").read_text())["documents"] for c in members]
    assert mixes[0] == mixes[1] == mixes[2]  # why they are one unit
    results = json.loads((out / "results.json").read_text())
    (row,) = last_generation_table(results, ["perplexity", "distinct_2"])
    assert sorted(row["seeds"]) == [0, 1000, 2000] and row["units"] == [0] and row["n_counts"] == "base seeds"
    values = [c["generations"][1]["metrics"]["perplexity"] for c in results["chains"]]
    ppl = row["metrics"]["perplexity"]
    assert ppl["n"] == 1 and ppl["members"] == 3
    assert ppl["mean"] == pytest.approx(sum(values) / 3) and ppl["ci95_low"] == ppl["ci95_high"] == ppl["mean"]
    assert ppl["member_std"] == pytest.approx(float(__import__("numpy").std(values, ddof=1)))
    md = (write_report(out) / "report.md").read_text()
    assert "1 base seeds, 3 members" in md and "(n=1, members sd" in md
