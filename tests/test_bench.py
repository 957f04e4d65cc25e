"""`madbench bench` on the tiny model through the real CLI: JSON structure and consistency (no timing assertions)."""

from __future__ import annotations

import json

from conftest import madbench


def test_bench_tiny_writes_consistent_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = madbench("bench", "model.name=tiny", "model.dtype=float32", "--samples", "4", "--new-tokens", "4",
                    "--train-docs", "4", "--eval-docs", "4", "--out", out, check=True)
    assert "madbench/floor" in proc.stdout
    data = json.loads(out.read_text())
    assert data["params"] > 0 and data["peak_gflops"] == max(data["matmul_gflops"].values()) > 0
    assert data["flops"]["train_flops_per_token"] == 2 * data["flops"]["forward_flops_per_token"]
    for side in ("madbench", "plain"):
        d = data[side]
        assert d["train_tokens"] > 0 and d["eval_tokens"] > 0 and d["perplexity"] > 1
        assert 0 < d["train_seconds"] <= d["step_seconds"] and d["sample_seconds"] > 0
    assert data["madbench"]["eval_tokens"] == data["plain"]["eval_tokens"]  # same tokens scored both ways
    assert [r["task"] for r in data["table"]] == ["sampling tok/s", "LoRA training tok/s", "evaluation tok/s", "generation step s"]
    for r in data["table"]:
        assert r["madbench"] > 0 and r["plain"] > 0 and r["floor"] > 0 and r["speedup"] > 0
    assert data["peak_rss_mb"] > 0


def test_bench_rejects_bad_override():
    proc = madbench("bench", "model.nme=tiny")
    assert proc.returncode == 2 and "model.nme" in proc.stderr
