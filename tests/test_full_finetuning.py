"""train.method=full: every weight trained, saved as safetensors, resumable, and refused where it cannot run.

One real run of the tiny model (fully synthetic, 2 generations after generation 0), killed
after generation 1 and resumed, against an uninterrupted run of the same config.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from conftest import madbench, signal_when, start_madbench

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes

FULL = ["--preset", "smoke", "train.method=full", "loop.regimes=[fully_synthetic]", "data.train_docs=16",
        "sampling.num_samples=16", "sampling.batch_size=16", "eval.tasks=[]",
        "eval.metrics=[perplexity,distinct_2,tail_ppl_median,tail_below_g0_p05,tail_above_g0_p95,tail_w1_log_ppl]"]
CHAIN = "fully_synthetic-replace-s0"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    madbench("run", *FULL, "--output-dir", out, check=True)
    return out


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_full_run_saves_plain_transformers_weights_and_memory(full_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gens = [full_run / "chains" / CHAIN / f"gen_{g:03d}" for g in (1, 2)]
    assert not any((g / "adapter").exists() for g in gens)
    models = []
    for g in [full_run / "gen0" / "seed0", *gens]:
        assert (g / "model" / "model.safetensors").is_file()
        models.append(AutoModelForCausalLM.from_pretrained(g / "model"))  # plain transformers, no peft, no madbench
    tok = AutoTokenizer.from_pretrained(gens[-1] / "model")
    with torch.no_grad():
        assert torch.isfinite(models[-1](**tok("In the beginning", return_tensors="pt")).logits).all()
    # every generation changed every layer kind, not only attention projections as LoRA would
    for a, b in zip(models, models[1:]):
        sa, sb = a.state_dict(), b.state_dict()
        changed = {k.split(".")[-2] for k in sa if not torch.equal(sa[k], sb[k])}
        assert {"gate_proj", "up_proj", "down_proj", "q_proj", "embed_tokens"} <= changed
    for gen in _results(full_run)["chains"][0]["generations"]:
        assert gen["train_memory"]["peak_rss_mb"] > 0
        assert gen["generation"] == 0 or gen["timing"]["train"] > 0
    meta = json.loads((gens[0] / "meta.json").read_text())
    assert meta["train"]["train_seconds"] > 0 and meta["train"]["train_peak_rss_mb"] > 0


def test_full_run_killed_after_generation_1_resumes_to_identical_results(tmp_path, full_run):
    out = tmp_path / "killed"
    proc = start_madbench("run", *FULL, "--output-dir", out)
    first = out / "chains" / CHAIN / "gen_001" / "meta.json"
    signal_when(proc, first, signal.SIGKILL)
    stamp = first.stat().st_mtime_ns
    resumed = madbench("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert first.stat().st_mtime_ns == stamp
    for g in (1, 2):
        rel = Path("chains") / CHAIN / f"gen_{g:03d}"
        assert (out / rel / "samples.jsonl").read_text() == (full_run / rel / "samples.jsonl").read_text()
        assert (out / rel / "metrics.json").read_text() == (full_run / rel / "metrics.json").read_text()


def test_init_from_base_copies_the_base_and_previous_loads_saved_weights(full_run):
    from madbench.models import weights
    from madbench.config.run_config import from_dict
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model

    cfg = from_dict(json.loads((full_run / "config.json").read_text())["config"])
    _, base = load_base(resolve_model(cfg, load_split(cfg)), cfg)
    fresh = weights.init_model(base, cfg, 0, None)  # loop.init_from=base
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), base.parameters()))
    assert all(p.requires_grad for p in fresh.parameters())
    with torch.no_grad():
        next(fresh.parameters()).add_(1.0)
    assert not torch.equal(next(fresh.parameters()), next(base.parameters()))  # a real copy: the base stays intact
    saved = full_run / "chains" / CHAIN / "gen_001" / "model"
    cont = weights.init_model(base, cfg, 0, saved)  # loop.init_from=previous
    from safetensors.torch import load_file

    state = load_file(saved / "model.safetensors")
    own = cont.state_dict()
    assert state and all(torch.equal(own[k], v) for k, v in state.items())


@pytest.mark.parametrize("override, message", [
    ("sampling.backend=vllm", "train.method=full cannot sample with sampling.backend=vllm"),
    ("lora.r=8", "lora.r only apply to train.method=lora"),
])
def test_full_with_lora_only_options_fails_before_training(tmp_path, override, message):
    proc = madbench("run", "--preset", "smoke", "train.method=full", override, "--output-dir", tmp_path / "x")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"madbench: error: {proc.stderr.split('error: ', 1)[1].strip()}"]
    assert message in proc.stderr and not (tmp_path / "x").exists()


def test_unknown_method_suggests_the_right_one(tmp_path):
    proc = madbench("run", "--preset", "smoke", "train.method=ful", "--dry-run")
    assert proc.returncode == 2 and "did you mean 'full'" in proc.stderr
