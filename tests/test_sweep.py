"""`madbench sweep`: grid planning, the three backends, failure reporting and resume.

Every sweep here is the smoke preset (tiny model), 3 regimes x 2 seeds, shrunk to one
generation after generation 0 so that each backend runs the whole grid in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, madbench

REGIMES = ["fully_synthetic", "synthetic_augmentation", "fresh_data"]
CHAINS = {f"{r}-replace-s{s}" for r in REGIMES for s in (0, 1)}


def write_spec(path, **grid):
    spec = {
        "preset": "smoke", "name": "test-sweep",
        "loop": {"generations": 1},
        "data": {"train_docs": 8, "eval_docs": 8},
        "sampling": {"num_samples": 8, "max_new_tokens": 16, "batch_size": 8},
        "eval": {"metrics": ["perplexity", "distinct_2"], "tasks": []},
        "grid": {"loop.regimes": REGIMES, "loop.seeds": [0, 1], **grid},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def events(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def complete_chains(run_dir, generations=1):
    return {p.name for p in (run_dir / "chains").iterdir()
            if p.is_dir() and all((p / f"gen_{g:03d}" / "meta.json").is_file() for g in range(generations + 1))}


def check_summary(sweep_dir):
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    rows = summary["last_generation"]
    assert sorted(r["regime"] for r in rows) == sorted(REGIMES)
    for row in rows:
        cell = row["metrics"]["perplexity"]
        assert row["generation"] == 1 and cell["n"] == 2
        assert cell["ci95_low"] <= cell["mean"] <= cell["ci95_high"]
    pairs = {(c["a"], c["b"]) for c in summary["comparisons"] if c["kind"] == "regime" and c["metric"] == "perplexity"}
    assert len(pairs) == 3  # every regime against every other
    assert "±" in (sweep_dir / "sweep_summary.md").read_text()
    assert list((sweep_dir / "report").glob("*.png")), "plots with seed bands"
    results = json.loads((sweep_dir / "runs" / "base" / "results.json").read_text())
    assert results["complete"] and {c["id"] for c in results["chains"]} == CHAINS


@pytest.mark.slow
def test_plan_and_dry_run(tmp_path):
    from madbench.errors import MadbenchError
    from madbench.experiments.sweep import identity, load_spec, plan

    spec = load_spec(str(write_spec(tmp_path / "s.yaml", **{"sampling.temperature": [0.7, 1.0]})))
    variants = plan(spec)
    assert [v["axes"] for v in variants] == [{"sampling.temperature": 0.7}, {"sampling.temperature": 1.0}]
    assert variants[0]["config"].hash() != variants[1]["config"].hash()
    assert {c.id for c in variants[0]["chains"]} == CHAINS
    more_seeds = plan({**spec, "grid": {**spec["grid"], "loop.seeds": [0, 1, 2]}})
    assert identity(more_seeds[0]["config"]) == identity(variants[0]["config"])  # same run folder, more chains
    with pytest.raises(MadbenchError, match="generations"):
        plan({**spec, "grid": {"loop.generation": [1, 2]}})

    proc = madbench("sweep", "--config", "sweeps/default.yaml", "--output-dir", tmp_path / "default", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "model smollm2-135m" in proc.stdout and "9 chains" in proc.stdout
    assert "3 generation-0 job(s) first, then 9 chain job(s)" in proc.stdout
    assert not (tmp_path / "default").exists()


@pytest.mark.slow
def test_grid_deep_merges_and_every_variant_is_checked_before_any_job(tmp_path):
    from madbench.experiments.sweep import load_spec, plan

    spec = load_spec(str(write_spec(tmp_path / "s.yaml", **{"mitigation_params.dedup": [{"shingle": 2}, {"shingle": 4}]})))
    spec["mitigation_params"] = {"dedup": {"threshold": 0.3}}
    assert [v["config"].mitigation_params for v in plan(spec)] == [
        {"dedup": {"threshold": 0.3, "shingle": 2}}, {"dedup": {"threshold": 0.3, "shingle": 4}}]
    bad = write_spec(tmp_path / "bad.yaml", **{"loop.mitigations": [[], ["dedup"]]})
    bad.write_text(bad.read_text() + "mitigation_params:\n  dedup: {bogus: 1}\n")
    for extra in (["--dry-run"], []):  # used to pass --dry-run, then fail both generation-0 jobs: 0 of 6 done
        proc = madbench("sweep", "--config", bad, "--output-dir", tmp_path / "out", *extra)
        assert proc.returncode == 2 and "unknown parameter 'bogus' for mitigation 'dedup'" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    tiny = write_spec(tmp_path / "t.yaml", **{"data.max_docs": [2000, 18]})
    proc = madbench("sweep", "--config", tiny, "--output-dir", tmp_path / "out", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.startswith("madbench: error: variant 'data.max_docs=18': fresh_data needs")


@pytest.mark.slow
def test_local_failure_then_resume_runs_only_what_is_missing(tmp_path):
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "sweep"
    run_dir = out / "runs" / "base"
    (run_dir / "chains").mkdir(parents=True)
    (run_dir / "chains" / "fresh_data-replace-s1").write_text("a file where the chain folder should go")

    first = madbench("sweep", "--config", spec, "--output-dir", out, "--workers", "2")
    assert first.returncode == 1, first.stderr[-2000:]
    assert "FAILED base/fresh_data-replace-s1" in first.stderr
    manifest = json.loads((out / "sweep.json").read_text())
    failed = manifest["jobs"]["base/fresh_data-replace-s1"]
    assert failed["status"] == "failed" and "Error" in failed["error"]
    assert "Traceback" in open(failed["traceback"]).read()
    assert complete_chains(run_dir) == CHAINS - {"fresh_data-replace-s1"}, "one failed chain stops no other"

    # repair the failure, lose the last generation of another chain, run the same command again
    (run_dir / "chains" / "fresh_data-replace-s1").unlink()
    shutil.rmtree(run_dir / "chains" / "fully_synthetic-replace-s0" / "gen_001")
    seen = len(events(run_dir / "events.jsonl"))
    second = madbench("sweep", "--config", spec, "--output-dir", out)
    assert second.returncode == 0, second.stderr[-2000:]
    new = events(run_dir / "events.jsonl")[seen:]
    done = {(e["chain"], e["generation"]) for e in new if e["event"] == "generation_done"}
    assert done == {("fresh_data-replace-s1", 0), ("fresh_data-replace-s1", 1), ("fully_synthetic-replace-s0", 1)}
    assert not [e for e in new if e["event"] == "gen0_trained"], "generation 0 is never trained twice"
    start = [e for e in events(out / "events.jsonl") if e["event"] == "sweep_start"][-1]
    assert set(start["jobs"]) == {"base/gen0-s1", "base/fresh_data-replace-s1", "base/fully_synthetic-replace-s0"}
    check_summary(out)


@pytest.mark.slow
def test_killed_sweep_reruns_only_unfinished_work(tmp_path):
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "sweep"
    log = out / "runs" / "base" / "events.jsonl"
    cmd = [sys.executable, "-m", "madbench", "sweep", "--config", str(spec), "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # kill driver and workers (SIGKILL: no clean-up) once a few chain generations are published
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and sum(e["event"] == "generation_done" for e in events(log)) >= 3:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = events(log)
    assert 3 <= sum(e["event"] == "generation_done" for e in before) < 12, "killed mid-way"
    chains_dir = out / "runs" / "base" / "chains"
    missing = {(c, g) for c in CHAINS for g in (0, 1) if not (chains_dir / c / f"gen_{g:03d}" / "meta.json").is_file()}

    rerun = madbench("sweep", "--config", spec, "--output-dir", out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert complete_chains(out / "runs" / "base") == CHAINS
    after = events(log)
    done = [(e["chain"], e["generation"]) for e in after if e["event"] == "generation_done"]
    assert len(done) == len(set(done)), "a finished generation ran twice"
    trained = [e["seed"] for e in after if e["event"] == "gen0_trained"]
    assert sorted(trained) == sorted(set(trained)), "generation 0 trained twice"
    assert set(done[sum(e["event"] == "generation_done" for e in before):]) == missing  # exactly what was missing


@pytest.mark.slow
def test_ray_backend(tmp_path):
    ray = pytest.importorskip("ray")
    from madbench.cli import main

    spec = write_spec(tmp_path / "s.yaml")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rc = main(["sweep", "--config", str(spec), "--output-dir", str(tmp_path / "sweep"), "--backend", "ray"])
    finally:
        ray.shutdown()
    assert rc == 0
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert manifest["backend"] == "ray" and all(j["status"] == "done" for j in manifest["jobs"].values())
    assert len(manifest["jobs"]) == 2 + 6  # generation 0 once per seed, then the chains
    check_summary(tmp_path / "sweep")


@pytest.mark.slow
def test_slurm_backend_through_submitit(tmp_path):
    pytest.importorskip("submitit")
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "sweep"
    proc = madbench("sweep", "--config", spec, "--output-dir", out, "--backend", "slurm", "--cluster", "local")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("job array") == 2  # one array per phase: generation 0, then the chains
    logs = [p for p in (out / "slurm").iterdir() if p.name != "%j"]
    assert len(logs) == 2 + 6  # submitit's folder per job (pickled job, result, stdout/stderr)
    check_summary(out)


def test_summary_compares_mitigations_and_variants():
    from madbench.reporting.sweep_summary import markdown, summarize

    def results(shift):
        chains = []
        for mits, values in (([], [10.0, 11.0, 12.0]), (["dedup"], [5.0, 5.5, 6.0])):
            for seed, v in enumerate(values):
                chains.append({"id": f"c{seed}{mits}", "regime": "fully_synthetic", "mode": "replace", "seed": seed,
                               "mitigations": mits, "generations": [
                                   {"generation": 0, "metrics": {"perplexity": 9.0 + seed}},
                                   {"generation": 1, "metrics": {"perplexity": v + shift}}]})
        return {"config": {"loop": {"generations": 1}}, "chains": chains,
                "metrics_info": {"perplexity": {"higher_is_better": False}}}

    summary = summarize([("t0.7", results(0.0)), ("t1.0", results(100.0))])
    by_kind = {}
    for c in summary["comparisons"]:
        by_kind.setdefault(c["kind"], []).append(c)
    mitigation = by_kind["mitigation"][0]
    assert mitigation["a"] == "t0.7: fully_synthetic/replace" and mitigation["b"] == "t0.7: fully_synthetic/replace+dedup"
    assert mitigation["better"] is True and mitigation["separated"] and mitigation["diff"] == pytest.approx(-5.5)
    assert len(by_kind["variant"]) == 2 and all(c["separated"] and c["better"] is False for c in by_kind["variant"])
    assert "regime" not in by_kind  # one regime: nothing to compare it with
    text = markdown(summary)
    assert "| t1.0: fully_synthetic/replace+dedup (3 seeds) | 1 |" in text and "mitigation" in text
    # the family of 4 comparisons is Holm-adjusted, and the table says so
    assert "Holm's method over the family of all 4 comparisons" in text
    raw = sorted((c["welch_p"], c["welch_p_holm"]) for c in summary["comparisons"])
    assert raw[0][1] == pytest.approx(4 * raw[0][0]) and all(h >= p for p, h in raw)


def test_a_protocol_sweep_records_each_variants_departures_from_the_protocol(tmp_path):
    """sweeps/drayson2025.yaml's variants are drayson2025 runs: each run folder records the protocol block (as
    `madbench run --preset` does), so its submission reaches the protocol page, an overridden fixed key listed."""
    import json

    from madbench.experiments.sweep import load_spec, plan, prepare_run_dirs

    variants = plan(load_spec(ROOT / "sweeps" / "drayson2025.yaml"), ["model.name=tiny", "train.learning_rate=3e-3"])
    prepare_run_dirs(variants, tmp_path)
    assert len(variants) == 6
    for v in variants:
        info = json.loads((tmp_path / "runs" / v["id"] / "protocol.json").read_text())
        assert info["protocol"] == "drayson2025"
        assert info["deviations"] == [{"key": "train.learning_rate", "protocol": 5e-05, "run": 0.003}]
