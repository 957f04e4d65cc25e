"""`madbench bench` on the tiny model through the real CLI: JSON structure and consistency (no timing assertions)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import madbench

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes


def test_bench_tiny_writes_consistent_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = madbench("bench", "model.name=tiny", "model.dtype=float32", "--samples", "4", "--new-tokens", "4",
                    "--train-docs", "4", "--eval-docs", "4", "--out", out, check=True)
    assert "madbench/floor" in proc.stdout
    data = json.loads(out.read_text())
    # token counts recomputed here from the tokenizer: 4 training documents packed into 128-token blocks for
    # 2 epochs (every token but a block's first is a target, padding none), 4 held-out documents scored after BOS
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import resolve_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = build_config(overrides=["model.name=tiny", "model.dtype=float32"])
    split = load_split(cfg)
    path = resolve_model(cfg, split)
    tok = AutoTokenizer.from_pretrained(path)
    stream = sum((len(tok(d.text, add_special_tokens=False)["input_ids"]) + 2 for d in split.pool[:4]), 0)
    train_targets = cfg.train.epochs * (stream - math.ceil(stream / cfg.train.seq_len))
    eval_targets = sum(len(tok(d.text, add_special_tokens=False)["input_ids"]) for d in split.eval[:4])
    assert data["params"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
    for side in ("madbench", "plain"):
        d = data[side]
        assert d["train_tokens"] == train_targets and d["eval_tokens"] == eval_targets, side
        assert 1 < d["perplexity"] < tok.vocab_size and 0 < d["sample_tokens"] <= 4 * 4
        assert 0 < d["train_seconds"] <= d["step_seconds"] and d["sample_seconds"] > 0
    # both paths train the same recipe on the same tokens: their held-out perplexities agree closely
    assert abs(math.log(data["madbench"]["perplexity"] / data["plain"]["perplexity"])) < 0.05
    assert [r["task"] for r in data["table"]] == ["sampling tok/s", "LoRA training tok/s", "evaluation tok/s", "generation step s"]
    for r in data["table"]:
        assert r["madbench"] > 0 and r["plain"] > 0 and r["floor"] > 0 and r["speedup"] > 0
    assert data["peak_rss_mb"] > 0


def test_bench_rejects_bad_override():
    proc = madbench("bench", "model.nme=tiny")
    assert proc.returncode == 2 and "model.nme" in proc.stderr
