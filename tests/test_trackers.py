"""Experiment trackers: the config once, each generation's metrics at step = generation, the plots at the end.

    .venv/bin/python -m pytest -q tests/test_trackers.py

``disk`` needs no package and is always tested on a real run. tensorboard, mlflow and
wandb are optional extras: each is tested on the same real run when its package is
installed (read back with its own reader), and skipped with the reason otherwise; a
missing package must be one line with the install command.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import madbench

import madbench as mb
from madbench.errors import MadbenchError

INSTALLED = [name for name in ("tensorboard", "mlflow", "wandb") if importlib.util.find_spec(name)]
MISSING = [name for name in ("tensorboard", "mlflow", "wandb") if name not in INSTALLED]
SMALL = ["loop.regimes=[fully_synthetic]", "loop.generations=1", "loop.mitigations=[none,mix_real]",
         "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]", "sampling.num_samples=16"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, madbench_cache):
    out = tmp_path_factory.mktemp("trackers") / "run"
    madbench("run", "--preset", "smoke", "--output-dir", out, "--report-to", ",".join(["disk", *INSTALLED]), *SMALL,
             check=True, timeout=900)
    return out, json.loads((out / "results.json").read_text())


def _expected(results):
    """(chain/metric, step) -> value, from results.json."""
    return {(f"{c['id']}/{k}", g["generation"]): v for c in results["chains"] for g in c["generations"]
            for k, v in g["metrics"].items() if v is not None}


def test_disk_tracker_logs_config_once_each_generation_at_its_step_and_the_plots(tracked):
    out, results = tracked
    assert json.loads((out / "tracking" / "config.json").read_text()) == results["config"]
    rows = [json.loads(line) for line in (out / "tracking" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2  # each chain x generation exactly once
    logged = {(k, r["step"]): v for r in rows for k, v in r["metrics"].items()}
    assert _expected(results).items() <= logged.items()
    artifacts = json.loads((out / "tracking" / "artifacts.json").read_text())
    assert "headline.png" in artifacts and "report.html" in artifacts


@pytest.mark.skipif("tensorboard" not in INSTALLED, reason="tensorboard is not installed (pip install 'madbench[tensorboard]')")
def test_tensorboard_event_files_read_back(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, results = tracked
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    for (tag, step), value in _expected(results).items():
        assert any(e.step == step and e.value == pytest.approx(value, rel=1e-5) for e in acc.Scalars(tag))
    assert any(t.startswith("report/") for t in acc.Tags()["images"])


@pytest.mark.skipif("mlflow" not in INSTALLED, reason="mlflow is not installed (pip install 'madbench[mlflow]')")
def test_mlflow_file_store_reads_back(tracked):
    from mlflow.tracking import MlflowClient

    out, results = tracked
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    run = client.search_runs([client.get_experiment_by_name("madbench").experiment_id])[0]
    assert run.data.params["loop.generations"] == "1"
    for (tag, step), value in _expected(results).items():
        history = client.get_metric_history(run.info.run_id, tag.replace("+", "_"))
        assert any(m.step == step and m.value == pytest.approx(value) for m in history)
    assert any(a.path == "report" for a in client.list_artifacts(run.info.run_id))


@pytest.mark.skipif("wandb" not in INSTALLED, reason="wandb is not installed (pip install 'madbench[wandb]')")
def test_wandb_offline_run_is_written(tracked):
    out, results = tracked
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(p.suffix == ".wandb" and p.stat().st_size > 0 for p in runs[0].iterdir())
    summary = json.loads((runs[0] / "files" / "wandb-summary.json").read_text())
    last = {k: v for (k, step), v in _expected(results).items() if step == 1}
    assert all(summary[k] == pytest.approx(v) for k, v in last.items())


@pytest.mark.parametrize("name", MISSING or ["(all installed)"])
def test_a_missing_tracker_package_is_one_line_with_the_install_command_before_any_training(tmp_path, name):
    if not MISSING:
        pytest.skip("every tracker package is installed")
    proc = madbench("run", "--preset", "smoke", "--report-to", "disk", "--report-to", name, "--output-dir", tmp_path / "run", *SMALL)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert f"report_to={name} needs the {name} package" in lines[0] and f"pip install 'madbench[{name}]'" in lines[0]
    assert not (tmp_path / "run").exists()
    with pytest.raises(MadbenchError, match=f"pip install 'madbench\\[{name}\\]'"):
        mb.run({}, preset="smoke", output_dir=tmp_path / "api", report_to=[name])
    assert not (tmp_path / "api").exists()


def test_an_unknown_tracker_gets_a_did_you_mean():
    proc = madbench("run", "--preset", "smoke", "--report-to", "tensorbord", "--dry-run")
    assert proc.returncode == 2 and "unknown tracker 'tensorbord' in report_to; did you mean 'tensorboard'?" in proc.stderr
