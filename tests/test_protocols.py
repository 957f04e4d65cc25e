"""Published protocols: every preset and sweep file resolves, a shortened version runs on the tiny model,
and an override of a key the paper fixes runs but is recorded and printed as a deviation."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, madbench
from madbench.config.protocols import PROTOCOLS

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes

# shrink everything the protocols leave free: tiny model, few documents, one generation, cheap metrics
SHORT = ["model.name=tiny", "model.tiny_size=small", "model.dtype=float32", "data.max_docs=2000", "data.train_docs=8",
         "data.eval_docs=8", "loop.generations=1", "sampling.num_samples=8", "sampling.batch_size=8",
         "train.batch_size=8", "train.seq_len=64", "train.mixed_precision=no", "eval.tasks=[]",
         "eval.metrics=[perplexity,distinct_2,tail_w1_log_ppl]"]


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_each_protocol_resolves_and_has_a_card(tmp_path, name):
    proc = madbench("run", "--preset", name, "--dry-run", "--output-dir", tmp_path / name)
    assert proc.returncode == 0, proc.stderr
    assert "deviates" not in proc.stdout  # the preset as published
    card = (ROOT / "docs" / "protocols" / f"{name}.md").read_text()
    assert PROTOCOLS[name]["paper"].split(",")[0] in card and "2 cores" in card and "GPU" in card


def test_override_of_a_fixed_key_runs_but_is_printed_and_recorded(tmp_path):
    out = tmp_path / "dev"
    proc = madbench("run", "--preset", "shumailov2024", *SHORT, "loop.generations=0", "sampling.num_beams=1", "loop.regimes=[fully_synthetic]",
                    "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deviates from the published protocol shumailov2024: sampling.num_beams=1 (protocol: 5)" in proc.stdout
    protocol = json.loads((out / "results.json").read_text())["protocol"]
    assert {d["key"] for d in protocol["deviations"]} == {"sampling.num_beams", "loop.regimes"}


def test_shumailov2024_shortened_runs_full_finetuning_with_beam_search(tmp_path):
    out = tmp_path / "shumailov"
    rows = ["train.packing=per_document", "loop.share_unit=tokens", "train.checkpoint=best_val", "data.val_docs=16"]
    proc = madbench("run", "--preset", "shumailov2024", *SHORT, *rows, "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deviates" not in proc.stdout  # model, corpus and sizes are free
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["deviations"] == [] and results["complete"]
    assert {c["id"] for c in results["chains"]} == {"fully_synthetic-replace-s0", "synthetic_augmentation-replace-s0"}
    aug = json.loads((out / "chains" / "synthetic_augmentation-replace-s0" / "gen_001" / "mix.json").read_text())
    assert sum(d["source"] == "real" for d in aug["documents"]) == 1  # the whole document nearest 10% of the tokens
    share = json.loads((out / "chains" / "synthetic_augmentation-replace-s0" / "gen_001" / "meta.json").read_text())["share"]
    assert share["unit"] == "tokens" and 0.07 <= share["real_tokens"] <= 0.13, share  # 10% +- 3% of the trained tokens
    gen1 = json.loads((out / "chains" / "fully_synthetic-replace-s0" / "gen_001" / "meta.json").read_text())["train"]
    assert gen1["train_checkpoint_epoch"] == gen1["train_val_losses"].index(min(gen1["train_val_losses"])) + 1
    assert (out / "chains" / "fully_synthetic-replace-s0" / "gen_001" / "model" / "model.safetensors").is_file()


def test_gerstgrasser2024_shortened_runs_the_three_data_modes(tmp_path):
    out = tmp_path / "gerstgrasser"
    proc = madbench("run", "--preset", "gerstgrasser2024", *SHORT, "loop.generations=2", "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mixes = {}
    for chain in ("fully_synthetic-replace", "synthetic_augmentation-accumulate", "synthetic_augmentation-accumulate_subsample"):
        mix = json.loads((out / "chains" / f"{chain}-s0" / "gen_002" / "mix.json").read_text())
        mixes[chain.split("-")[1]] = [d["source"] for d in mix["documents"]]
    # the paper's data: replace = the last 8 samples; accumulate = the 8 real documents plus 8 samples of each
    # of generations 0 and 1 (it grows); accumulate-subsample = 8 drawn from those 24 (fixed budget)
    assert {m: len(s) for m, s in mixes.items()} == {"replace": 8, "accumulate": 24, "accumulate_subsample": 8}
    assert mixes["replace"].count("real") == 0 and mixes["accumulate"].count("real") == 8


@pytest.mark.parametrize("sweep, variants", [("mad2024", 2), ("drayson2025", 6)])
def test_sweep_files_resolve(tmp_path, sweep, variants):
    proc = madbench("sweep", "--config", ROOT / "sweeps" / f"{sweep}.yaml", "--dry-run", "--output-dir", tmp_path / sweep)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("# variant ") == variants


def test_mad2024_shortened_runs_the_three_loops_with_biased_sampling(tmp_path):
    """One variant of sweeps/mad2024.yaml (the biased-sampling one) as a plain run: one process, seconds."""
    import yaml

    biased = yaml.safe_load((ROOT / "sweeps" / "mad2024.yaml").read_text())["grid"]["sampling"][1]
    out = tmp_path / "mad"
    proc = madbench("run", "--preset", "mad2024", *SHORT, *(f"sampling.{k}={v}" for k, v in biased.items()),
                    "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and len(results["chains"]) == 3
    assert results["config"]["sampling"]["temperature"] == 0.7 and results["protocol"]["deviations"] == []


def test_drayson2025_shortened_runs_greedy_decoding(tmp_path):
    out = tmp_path / "drayson"
    proc = madbench("run", "--preset", "drayson2025", *SHORT, "train.seq_len=160", "sampling.top_k=1", "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["complete"]
