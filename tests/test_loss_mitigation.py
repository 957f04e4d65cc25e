"""The training-side mitigation stage (``token_weights``) and truncated cross-entropy, on the real tiny model.

    .venv/bin/python -m pytest -q tests/test_loss_mitigation.py
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from madbench.errors import MadbenchError
from madbench.mitigations import MitigationContext, build_mitigations, loss_weights

from conftest import madbench


def test_truncated_ce_masks_exactly_the_confident_tokens():
    m = build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 0.5}})[0]
    probs = torch.tensor([[[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]]])
    targets = torch.tensor([[0, 0, 1, -100]])  # p(target) = 0.9, 0.4, 0.8, ignored
    weights, counts = m.token_weights(probs.log(), targets, MitigationContext(1, 0, []))
    assert weights.tolist() == [[0.0, 1.0, 0.0, 1.0]]  # the ignored position is zeroed by the loss, not here
    assert counts == {"tokens": 3, "truncated": 2}
    assert m.token_stats(counts)["truncated_share"] == pytest.approx(0.6667, abs=1e-4)
    keep_all = build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 1.0}})[0]
    assert keep_all.token_weights(probs.log(), targets, None)[1]["truncated"] == 0


def test_only_loss_mitigations_switch_the_training_step():
    plain = build_mitigations(["mix_real", "dedup"], {})
    assert loss_weights(plain, None) is None and loss_weights([], None) is None
    assert loss_weights(build_mitigations(["mix_real", "truncated_ce"], {}), None) is not None


def test_bad_gamma_is_one_line():
    with pytest.raises(MadbenchError, match="gamma must be in \\(0, 1\\]"):
        build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 0}})


def test_weighted_loss_matches_the_model_loss_and_the_masked_mean(tiny):
    from madbench.training.trainer import pack, weighted_lm_loss

    cfg, split, tokenizer, model = tiny
    batch = pack(tokenizer, [d.text for d in split.pool[:6]], 64)[0][:4]  # (ids, labels): the ids
    with torch.no_grad():
        reference = model(input_ids=batch, labels=batch).loss
        ones, _ = weighted_lm_loss(model, batch, batch, lambda logits, targets: (None, {}))
        assert ones.item() == pytest.approx(reference.item(), rel=1e-5)
        m = build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 0.3, "average": "kept"}})[0]
        masked, counts = weighted_lm_loss(model, batch, batch, loss_weights([m], None))
        over_all = build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 0.3}})[0]  # ForTIFAI's loss.mean()
        zeros_counted, _ = weighted_lm_loss(model, batch, batch, loss_weights([over_all], None))
        # independent: the mean NLL of the tokens whose target probability is <= gamma
        logp = torch.log_softmax(model(input_ids=batch).logits[:, :-1].float(), -1)
        target_logp = logp.gather(-1, batch[:, 1:].unsqueeze(-1)).squeeze(-1)
        kept = target_logp.exp() <= 0.3
    assert 0 < counts["truncated_ce"]["truncated"] < counts["truncated_ce"]["tokens"] == batch[:, 1:].numel()
    assert counts["truncated_ce"]["truncated"] == int((~kept).sum())
    assert masked.item() == pytest.approx((-target_logp[kept]).mean().item(), rel=1e-5)
    assert masked.item() > reference.item()  # the confident (low-loss) tokens left the average
    # average=all (the default): the same kept NLLs summed, divided by every target token (a truncated one is 0)
    assert zeros_counted.item() == pytest.approx((-target_logp[kept]).sum().item() / kept.numel(), rel=1e-5)
    assert zeros_counted.item() < masked.item()


def test_bad_average_is_one_line():
    with pytest.raises(MadbenchError, match="average must be one of all, kept, got 'al' did you mean 'all'"):
        build_mitigations(["truncated_ce"], {"truncated_ce": {"average": "al"}})


@pytest.mark.slow
def test_truncated_ce_chain_records_its_share_and_leaves_the_baseline_alone(tmp_path):
    small = ["--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]", "loop.regimes=[fully_synthetic]",
             "loop.generations=1"]
    both, plain = tmp_path / "both", tmp_path / "plain"
    madbench("run", *small, "loop.mitigations=[none,truncated_ce]", "mitigation_params.truncated_ce.gamma=0.5",
             "--output-dir", both, check=True)
    madbench("run", *small, "--output-dir", plain, check=True)
    chains = {c["id"]: c for c in json.loads((both / "results.json").read_text())["chains"]}
    tce = chains["fully_synthetic-replace-s0-truncated_ce"]["generations"]
    stats = tce[1]["mitigations"]["train"]["truncated_ce"]
    assert stats["tokens"] > 0 and 0 < stats["truncated"] < stats["tokens"]
    assert stats["truncated_share"] == round(stats["truncated"] / stats["tokens"], 4)
    assert stats["tokens"] == tce[1]["train_tokens"]  # every loss target of every block was counted (one epoch)
    assert "train" not in tce[0]["mitigations"]  # generation 0 is shared and trains on the plain loss
    base = chains["fully_synthetic-replace-s0"]["generations"]
    alone = json.loads((plain / "results.json").read_text())["chains"][0]["generations"]
    assert all("train" not in g["mitigations"] for g in base)
    assert [g["metrics"] for g in base] == [g["metrics"] for g in alone]  # no hook: identical numbers
    assert tce[1]["metrics"]["perplexity"] != base[1]["metrics"]["perplexity"]
    assert math.isfinite(tce[1]["train_loss_last"])


@pytest.mark.slow
def test_counts_cover_every_process_under_accelerate_launch(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT

    out = tmp_path / "ddp"
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher) if launcher.exists() else shutil.which("accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "madbench", "run",
           "--preset", "smoke", "--output-dir", str(out), "loop.regimes=[fully_synthetic]", "loop.generations=1",
           "loop.mitigations=[truncated_ce]", "eval.tasks=[]", "eval.metrics=[perplexity]"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    from transformers import AutoTokenizer

    from madbench.training.trainer import pack

    results = json.loads((out / "results.json").read_text())
    stats = results["chains"][0]["generations"][1]["mitigations"]["train"]["truncated_ce"]
    chain = out / "chains" / results["chains"][0]["id"]
    texts = {r["id"]: r["text"] for r in map(json.loads, (chain / "gen_000" / "samples.jsonl").read_text().splitlines())}
    mix = json.loads((chain / "gen_001" / "mix.json").read_text())["documents"]
    _, labels = pack(AutoTokenizer.from_pretrained(results["environment"]["model_path"]), [texts[d["id"]] for d in mix], 64)
    assert stats["tokens"] == int((labels[:, 1:] != -100).sum())  # one epoch, both processes' batches (not only the writer's half)
