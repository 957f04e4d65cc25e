"""The Python API: madbench.run(config, output_dir=..., overrides=...) and madbench.load_results(dir).

    .venv/bin/python -m pytest -q tests/test_api.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

import madbench
from madbench.api import ChainResult, GenerationResult, Results
from madbench.config.run_config import RunConfig
from madbench.errors import MadbenchError

SMALL = {"loop": {"regimes": ["fully_synthetic"], "generations": 1, "mitigations": ["none", "mix_real"]},
         "eval": {"metrics": ["perplexity", "distinct_2"], "tasks": []}}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, madbench_cache):
    out = tmp_path_factory.mktemp("api") / "run"
    results = madbench.run(SMALL, preset="smoke", output_dir=out, overrides=["sampling.num_samples=16"], log=lambda *a: None)
    return out, results


@pytest.mark.slow
def test_run_with_a_dict_returns_typed_results_that_match_results_json(api_run):
    out, results = api_run
    assert isinstance(results, Results) and results.complete and results.path == out
    assert all(isinstance(c, ChainResult) and isinstance(c.generations[0], GenerationResult) for c in results.chains)
    assert sorted(c.mitigations for c in results.chains) == [(), ("mix_real",)]
    assert results.config["sampling"]["num_samples"] == 16  # the override went in
    raw = json.loads((out / "results.json").read_text())
    for chain, raw_chain in zip(results.chains, raw["chains"]):
        assert chain.metric("perplexity") == [g["metrics"]["perplexity"] for g in raw_chain["generations"]]


@pytest.mark.slow
def test_to_dataframe_has_one_row_per_chain_and_generation(api_run):
    out, results = api_run
    df = results.to_dataframe()
    assert len(df) == 2 * 2  # 2 chains x (generation 0 + 1)
    assert {"chain", "regime", "seed", "mitigations", "generation", "synthetic_fraction", "perplexity", "distinct_2"} <= set(df.columns)
    row = df[(df.mitigations == "mix_real") & (df.generation == 1)].iloc[0]
    chain = next(c for c in results.chains if c.mitigations == ("mix_real",))
    assert row["perplexity"] == chain.generations[1].metrics["perplexity"]
    assert row["synthetic_fraction"] == pytest.approx(0.9, abs=0.05)  # mix_real keeps 10% real documents
    assert madbench.load_results(out).to_dataframe().equals(df)


@pytest.mark.slow
def test_a_yaml_path_and_a_config_object_resolve_to_the_same_run(api_run, tmp_path):
    out, results = api_run
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(yaml.safe_dump(SMALL))
    # the same config in another form: the run folder is resumed (nothing recomputed), not refused as different
    again = madbench.run(cfg_file, preset="smoke", output_dir=out, overrides=["sampling.num_samples=16"], log=lambda *a: None)
    assert again.config_hash == results.config_hash
    cfg = madbench.api.build(SMALL, ["sampling.num_samples=16"], preset="smoke")
    assert isinstance(cfg, RunConfig)
    assert madbench.run(cfg, output_dir=out, log=lambda *a: None).to_dataframe().equals(results.to_dataframe())
    with pytest.raises(MadbenchError, match="different config"):
        madbench.run(cfg, output_dir=out, overrides=["sampling.num_samples=8"], log=lambda *a: None)


def test_bad_input_raises_the_clis_one_line_before_anything_runs(tmp_path):
    with pytest.raises(MadbenchError, match="unknown config key 'loop.generatons'; did you mean 'generations'"):
        madbench.run({"loop": {"generatons": 1}}, preset="smoke", output_dir=tmp_path / "x")
    with pytest.raises(MadbenchError, match="config must be a dict, a YAML/JSON path or a RunConfig"):
        madbench.run(42, output_dir=tmp_path / "x")
    with pytest.raises(MadbenchError, match="results.json not found"):
        madbench.load_results(tmp_path)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_to_dataframe_without_pandas_says_how_to_get_it(api_run):
    code = ("import sys; sys.modules['pandas'] = None\n"  # as if pandas were not installed
            "import madbench\nfrom madbench.errors import MadbenchError\n"
            f"r = madbench.load_results({str(api_run[0])!r})\nprint(len(r.rows()))\n"
            "try:\n    r.to_dataframe()\nexcept MadbenchError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["4", "Results.to_dataframe needs pandas; run: pip install pandas (or use Results.rows())"]


def test_the_run_is_named_after_output_dir_and_rows_carry_intervals_and_the_baseline_label(api_run):
    out, results = api_run
    assert results.run_name == out.name == results.config["name"]  # not the preset's "smoke"
    baseline = next(c for c in results.chains if c.mitigations == ())
    assert baseline.label == "none"
    row = next(r for r in results.rows() if r["chain"] == baseline.id and r["generation"] == 1)
    assert row["mitigations"] == "none"  # the same spelling as loop.mitigations=[none,...] and ChainResult.label
    low, high = baseline.generations[1].intervals["perplexity"]
    assert (row["perplexity.ci_low"], row["perplexity.ci_high"]) == (low, high) and low <= row["perplexity"] <= high


def test_the_python_api_turns_third_party_progress_bars_off(api_run):
    from transformers.utils import logging as hf_logging

    assert not hf_logging.is_progress_bar_enabled() and os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"
