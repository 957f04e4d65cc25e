"""End to end through the real CLI on the tiny model: results, resume after a kill, determinism, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import madbench, one_line_error, signal_when, start_madbench

from madbench.results.collect import validate_results


def load(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def metrics_by_chain(results: dict) -> dict:
    return {c["id"]: [g["metrics"] for g in c["generations"]] for c in results["chains"]}


def test_smoke_run_writes_complete_schema_checked_results(smoke_run):
    results = load(smoke_run)
    validate_results(results)
    assert results["complete"] and results["schema_version"].startswith("1.")
    assert {c["regime"] for c in results["chains"]} == {"fully_synthetic", "synthetic_augmentation", "fresh_data"}
    for chain in results["chains"]:
        gens = chain["generations"]
        assert [g["generation"] for g in gens] == [0, 1, 2]
        for g in gens:
            assert g["metrics"]["perplexity"] > 1 and 0 < g["metrics"]["distinct_2"] <= 1
            assert g["train_tokens"] > 0
        assert gens[0]["synthetic_fraction"] == 0.0
        for g in gens[1:]:  # where a generation's time went
            assert set(g["timing"]) == {"train", "evaluate_model", "sample", "evaluate_samples", "evaluate_reference"}
            assert 0 < sum(g["timing"].values()) <= g["seconds"]
        assert all(g["num_scored"] == results["config"]["sampling"]["num_samples"] for g in gens)
    fully = next(c for c in results["chains"] if c["regime"] == "fully_synthetic")
    assert all(g["synthetic_fraction"] == 1.0 for g in fully["generations"][1:])
    mixed = next(c for c in results["chains"] if c["regime"] == "fresh_data")
    assert all(0 < g["synthetic_fraction"] < 1 for g in mixed["generations"][1:])
    # generation 0 is shared: one training, identical numbers in every chain
    gen0 = {json.dumps(c["generations"][0]["metrics"], sort_keys=True) for c in results["chains"]}
    assert len(gen0) == 1
    assert len(list((smoke_run / "gen0").iterdir())) == 1
    env = results["environment"]
    assert env["versions"]["torch"] and env["versions"]["peft"] and "commit" in env["git"]
    assert results["config"]["loop"]["generations"] == 2


def test_run_folder_has_manifests_samples_and_loadable_adapters(smoke_run):
    gen = smoke_run / "chains" / "fresh_data-replace-s0" / "gen_002"
    mix = json.loads((gen / "mix.json").read_text())
    sources = {d["source"] for d in mix["documents"]}
    assert sources == {"real", "synthetic"}
    # generation 0 trained on the first data.train_docs documents of the real training pool, none held out
    from madbench.config.run_config import from_dict
    from madbench.data.corpus import load_split

    split = load_split(from_dict(json.loads((smoke_run / "config.json").read_text())["config"]))
    gen0 = json.loads((smoke_run / "gen0" / "seed0" / "mix.json").read_text())["documents"]
    assert [d["id"] for d in gen0] == [d.id for d in split.pool[:24]]
    assert {d["source"] for d in gen0} == {"real"} and not {d["id"] for d in gen0} & {d.id for d in split.eval}
    synthetic = [d["id"] for d in mix["documents"] if d["source"] == "synthetic"]
    assert synthetic and all(i.startswith("g001-") for i in synthetic)  # generation 2 trains on generation 1's samples
    samples = [json.loads(line) for line in (gen / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 24 and all(s["prompt"] for s in samples)  # a continuation may be empty (EOS first)
    assert sum(bool(s["text"]) for s in samples) > 12
    # the adapter loads with plain transformers + peft and produces logits
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((gen / "adapter" / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    tok = AutoTokenizer.from_pretrained(config["base_model_name_or_path"])
    model = PeftModel.from_pretrained(base, gen / "adapter")
    with torch.no_grad():
        out = model(**tok("In the beginning", return_tensors="pt"))
    assert torch.isfinite(out.logits).all()


def _start(out: Path, *extra):
    return start_madbench("run", "--preset", "smoke", "--output-dir", out, *extra, stdout=subprocess.PIPE)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(tmp_path, smoke_run):
    """Ctrl-C after the first generation, then SIGKILL of the resumed process a generation later, then a resume:
    the same numbers and samples as an uninterrupted run, and no finished generation recomputed."""
    out = tmp_path / "killed"
    proc = _start(out, "--report-to", "disk")
    first = out / "chains" / "fully_synthetic-replace-s0" / "gen_001" / "meta.json"
    _, stderr = signal_when(proc, first, signal.SIGINT)
    assert proc.returncode == 130 and "resume" in stderr and "Traceback" not in stderr
    assert not (out / "results.json").exists() or not load(out)["complete"]
    stamp = first.stat().st_mtime_ns
    proc = _start(out)  # the same command resumes; killed outright one generation later
    second = out / "chains" / "fully_synthetic-replace-s0" / "gen_002" / "meta.json"
    signal_when(proc, second, signal.SIGKILL)
    assert not (out / "results.json").exists() or not load(out)["complete"]
    stamps = {p: p.stat().st_mtime_ns for p in (first, second)}
    resumed = madbench("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert first.stat().st_mtime_ns == stamp  # finished generations are never recomputed or overwritten
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert metrics_by_chain(load(out)) == metrics_by_chain(load(smoke_run))  # same seed -> same numbers
    for chain in ("fully_synthetic-replace-s0", "fresh_data-replace-s0"):
        a = (out / "chains" / chain / "gen_002" / "samples.jsonl").read_text()
        b = (smoke_run / "chains" / chain / "gen_002" / "samples.jsonl").read_text()
        assert a == b
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert events.count("gen0_trained") == 1
    # the resumes (no --report-to) continued the run's tracker: every (chain, generation) logged, none twice except
    # the one batch each signal may catch between the tracker's flush and its state write (madbench/reporting/trackers.py;
    # exactly-once under a controlled interruption is tests/test_trackers.py's)
    logged = [(key.split("/")[0], row["step"]) for row in map(json.loads, (out / "tracking" / "metrics.jsonl").read_text().splitlines())
              for key in row["metrics"] if key.endswith("/perplexity")]
    planned = [(c["id"], g["generation"]) for c in load(out)["chains"] for g in c["generations"]]
    assert set(logged) == set(planned) and len(planned) == 9, logged
    assert len(logged) - len(planned) <= 2, logged


@pytest.mark.slow
def test_another_seed_gives_other_samples(tmp_path, smoke_run):
    out = tmp_path / "seed1"
    madbench("run", "--preset", "smoke", "--output-dir", out, "loop.seeds=[1]", "loop.regimes=[fully_synthetic]",
             "loop.generations=1", check=True)
    a = (out / "chains" / "fully_synthetic-replace-s1" / "gen_001" / "samples.jsonl").read_text()
    b = (smoke_run / "chains" / "fully_synthetic-replace-s0" / "gen_001" / "samples.jsonl").read_text()
    assert a != b


@pytest.mark.slow
def test_rerun_of_finished_run_recomputes_nothing(smoke_run):
    before = (smoke_run / "events.jsonl").read_text().count("generation_done")
    proc = madbench("run", "--preset", "smoke", "--output-dir", smoke_run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (smoke_run / "events.jsonl").read_text().count("generation_done") == before


@pytest.mark.slow
def test_dry_run_prints_config_and_plan(tmp_path):
    proc = madbench("run", "--preset", "smoke", "--dry-run", "--output-dir", tmp_path / "x", "sampling.temperature=0.7")
    assert proc.returncode == 0
    assert "temperature: 0.7" in proc.stdout and "fully_synthetic-replace-s0: 0/3" in proc.stdout
    assert not (tmp_path / "x").exists()


PREFLIGHT = [  # each passed --dry-run before: found late (at load or after generation 0) or never
    (["model.name=/nonexistent"], "model '/nonexistent' not found"),
    (["data.corpus=/etc/passwd"], "corpus '/etc/passwd' is not a .txt, .jsonl or .json file"),
    (["data.corpus={binary}"], "is binary (it holds NUL bytes), not text"),
    (["loop.mitigations=[[dedup]]", "mitigation_params.dedup.thresold=0.3"],
     "unknown parameter 'thresold' for mitigation 'dedup'; did you mean 'threshold'?"),
    (["mitigation_params.dedup.threshold=7"], "mitigation_params.dedup.threshold must be in (0, 1], got 7"),
    (["loop.generations=200"], "fresh_data needs 12 new real documents per generation x 200 generations"),
]


PREFLIGHT_IDS = ["model", "corpus-passwd", "corpus-binary", "param-typo", "param-range", "fresh-budget"]


@pytest.mark.slow
@pytest.mark.parametrize("args,message,dry", [(a, m, True) for a, m in PREFLIGHT] + [(a, m, False) for a, m in PREFLIGHT[3::2]],
                         ids=[f"dry-run-{n}" for n in PREFLIGHT_IDS] + [f"run-{n}" for n in PREFLIGHT_IDS[3::2]])
def test_preflight_catches_bad_config_before_anything_runs(tmp_path, args, message, dry):
    binary = tmp_path / "corpus.txt"
    binary.write_bytes(b"\x7fELF\x00\x00" * 100)
    out = tmp_path / "bad"
    args = [a.format(binary=binary) for a in args]
    proc = madbench("run", "--preset", "smoke", "--output-dir", out, *args, *(["--dry-run"] if dry else []))
    one_line_error(proc, message, alone=True)
    assert not out.exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_dry_run_on_a_folder_with_another_config_shows_the_plan(smoke_run):
    before = sorted(p.name for p in smoke_run.iterdir())
    proc = madbench("run", "--preset", "smoke", "--output-dir", smoke_run, "--dry-run", "sampling.temperature=0.5")
    assert proc.returncode == 0, proc.stderr
    assert "temperature: 0.5" in proc.stdout and "holds a run with a different config" in proc.stdout
    assert "fully_synthetic-replace-s0: 0/3 generations done (the folder holds another config)" in proc.stdout
    same = madbench("run", "--preset", "smoke", "--output-dir", smoke_run, "--dry-run")
    assert "fully_synthetic-replace-s0: 3/3 generations done" in same.stdout and "different config" not in same.stdout
    assert sorted(p.name for p in smoke_run.iterdir()) == before


@pytest.mark.slow
def test_accumulate_and_mitigation_chains_run(tmp_path):
    out = tmp_path / "acc"
    madbench("run", "--preset", "smoke", "--output-dir", out, "loop.regimes=[synthetic_augmentation/accumulate]",
             "loop.generations=2", "loop.mitigations=[none, mix_real]", "mitigation_params.mix_real.fraction=0.25", check=True)
    results = load(out)
    chains = {c["id"]: c for c in results["chains"]}
    assert set(chains) == {"synthetic_augmentation-accumulate-s0", "synthetic_augmentation-accumulate-s0-mix_real"}
    plain = chains["synthetic_augmentation-accumulate-s0"]["generations"]
    assert plain[2]["train_docs"] > plain[1]["train_docs"]  # accumulate grows the mix
    mitigated = chains["synthetic_augmentation-accumulate-s0-mix_real"]["generations"]
    assert mitigated[1]["mitigations"]["mix"]["mix_real"]["real_added"] > 0


BAD_INPUTS = [
    (["loop.regimes=[fully_synthtic]"], "did you mean 'fully_synthetic'"),
    (["loop.generatons=3"], "unknown config key 'loop.generatons'; did you mean 'generations'"),
    (["--preset", "smok"], "unknown preset 'smok'; did you mean 'smoke'"),
    (["loop.generations=many"], "config key 'loop.generations' expects int"),
    (["loop.mitigations=[mix_rel]"], "unknown mitigation 'mix_rel'"),
    (["model.name=/nonexistent/model"], "model '/nonexistent/model' not found"),
    (["data.corpus=/nonexistent/corpus.txt"], "corpus '/nonexistent/corpus.txt' not found"),
    (["data.corpus=kvj"], "unknown corpus 'kvj'; did you mean 'kjv'"),
    (["--config", "/nonexistent.yaml"], "config file '/nonexistent.yaml' not found"),
    (["generations3"], "must look like key=value"),
    (["sampling.top_p=1.5"], "sampling.top_p must be in (0, 1]"),
    (["sampling.backend=tgi"], "unknown sampling.backend 'tgi'; use hf or vllm"),
    (["sampling.backend=vllm"], "sampling.backend=vllm needs"),  # vLLM not installed, or no CUDA GPU (CI has neither)
]


@pytest.mark.slow
@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    base = [] if "--preset" in args else ["--preset", "smoke"]
    proc = madbench("run", *base, "--output-dir", tmp_path / "bad", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("madbench: error:"), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_malformed_config_file_and_resume_of_non_run(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loop: [unclosed\n")
    proc = madbench("run", "--config", bad)
    assert proc.returncode == 2 and "is not valid YAML/JSON at line" in proc.stderr
    proc = madbench("run", "--resume", tmp_path)
    assert proc.returncode == 2 and "not a madbench run folder" in proc.stderr


@pytest.mark.slow
def test_changed_config_in_existing_folder_is_refused(smoke_run):
    proc = madbench("run", "--preset", "smoke", "--output-dir", smoke_run, "sampling.temperature=0.5")
    assert proc.returncode == 2 and "different config" in proc.stderr and "--resume" in proc.stderr


@pytest.fixture(scope="module")
def composed_run(tmp_path_factory):
    """A short fully_synthetic run with dedup + verifier_filter, started outside any git repository, output piped."""
    tmp = tmp_path_factory.mktemp("composed")
    out = tmp / "run"
    proc = madbench("run", "--preset", "smoke", "--output-dir", out, "loop.regimes=[fully_synthetic]", "loop.generations=1",
                    "loop.mitigations=[[dedup,verifier_filter]]", "eval.tasks=[madbench_cloze]",
                    "eval.metrics=[perplexity,distinct_2]", cwd=tmp, check=True)
    return out, proc


@pytest.mark.slow
def test_composed_filters_train_on_num_samples_documents(composed_run):
    """dedup + verifier_filter used to train fully_synthetic generation 1 on 19 of 24 documents (max instead of product)."""
    out, _ = composed_run
    gens = load(out)["chains"][0]["generations"]
    assert gens[1]["train_docs"] == 24 and gens[1]["synthetic_fraction"] == 1.0
    for g in gens:
        samples = g["mitigations"]["samples"]
        assert samples["composition"]["kept"] == 24 and g["num_kept"] == 24
        assert samples["dedup"]["kept"] + samples["dedup"]["dropped"] == samples["composition"]["sampled"]
        assert samples["verifier_filter"]["sampled"] == samples["dedup"]["kept"]


@pytest.mark.slow
def test_log_file_holds_one_line_per_generation(composed_run):
    """Output to a file (not a terminal): no transformers / datasets / lm-eval progress bars, no git chatter
    (the run starts outside any git repository, where lm-eval's git probe complains)."""
    out, proc = composed_run
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("madbench: run") and lines[-1].startswith("madbench: done")
    assert [line.split(":")[0] for line in lines[1:3]] == ["[1/2] fully_synthetic-replace-s0-dedup+verifier_filter gen 0",
                                                          "[2/2] fully_synthetic-replace-s0-dedup+verifier_filter gen 1"]
    assert proc.stderr.strip() == "", proc.stderr[-2000:]
    kept = (out / "chains" / "fully_synthetic-replace-s0-dedup+verifier_filter" / "gen_001" / "lm_eval" / "stderr.txt").read_text()
    # lm-eval's own output (its TemplateLM's tokenizing bar, whichever lm-eval model scored) is kept beside its results
    assert "Tokenizing inputs" in kept
