"""Experiment trackers, for real: one tiny run with every tracker, interrupted and resumed, read back by each package.

    .venv/bin/python -m pytest -q tests/test_trackers.py

The run (``report_to=[disk, tensorboard, mlflow, wandb]``, the Python API, inside a notebook's
own active MLflow and wandb runs) is stopped with Ctrl-C once its first chain is logged, then
run again in the same process: a resume. Each tracker's output is then read back with its own package:
TensorBoard's EventAccumulator, an MlflowClient on the file store, and ``wandb leet inspect
--json`` (wandb's reader of its offline ``.wandb`` log). Every (chain, generation) must be
there exactly once, at step = generation, with the value of results.json. tensorboard,
mlflow-skinny and wandb come with the ``dev`` extra (scripts/setup.sh): these tests need them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT

import madbench as mb
from madbench.reporting import trackers
from madbench.errors import MadbenchError
from madbench.config.dotted import flatten

ALL = ["disk", "tensorboard", "mlflow", "wandb"]
SMALL = ["loop.regimes=[fully_synthetic]", "loop.generations=1", "loop.mitigations=[none,mix_real+accumulate]",
         "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]", "sampling.num_samples=16"]
FIRST = "fully_synthetic-replace-s0"  # the chain that runs first


def _rows(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


class _CtrlC:
    """The run's log: presses Ctrl-C (KeyboardInterrupt, as in a notebook) when the second chain's generation 0 is
    reported; the first chain's generations 0 and 1 are logged to the trackers by then, the second chain's are not."""

    def __call__(self, *args, **kwargs):
        if str(args[0]).startswith("[3/4]"):
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, madbench_cache):
    """The run folder, its results, and what the notebook's own MLflow and wandb runs looked like after the resume."""
    import mlflow
    import wandb

    base = tmp_path_factory.mktemp("trackers")
    out = base / "run"
    for var, folder in (("WANDB_DATA_DIR", "wandb-data"), ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_CONFIG_DIR", "wandb-config")):
        os.environ.setdefault(var, str(base / folder))  # wandb's staging and cache: not in the home folder
    user_uri = (base / "user-mlruns").resolve().as_uri()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(user_uri)
    user_mlflow = mlflow.start_run(run_name="notebook")
    user_wandb = wandb.init(project="notebook", dir=str(base), mode="offline")
    try:
        with pytest.raises(KeyboardInterrupt):
            mb.run({}, preset="smoke", overrides=SMALL, output_dir=out, report_to=ALL, log=_CtrlC())
        before = _rows(out / "tracking" / "metrics.jsonl")
        mb.run({}, preset="smoke", overrides=SMALL, output_dir=out, report_to=ALL, log=lambda *a, **k: None)  # the resume
        notebook = {"mlflow_uri": mlflow.get_tracking_uri(), "mlflow_active": getattr(mlflow.active_run(), "info", None),
                    "wandb_run": wandb.run}
        user_wandb.log({"still": 1})  # a finished run would refuse this
    finally:
        user_wandb.finish()
        mlflow.end_run()
        mlflow.set_tracking_uri(None)  # the notebook's URI (and the MLFLOW_TRACKING_URI it set) ends with the fixture
    return {"out": out, "results": json.loads((out / "results.json").read_text()), "before": before,
            "notebook": notebook, "user_uri": user_uri, "user_mlflow": user_mlflow.info.run_id, "user_wandb": user_wandb}


def _expected(results):
    """(chain/metric, step) -> value, from results.json."""
    return {(f"{c['id']}/{k}", g["generation"]): v for c in results["chains"] for g in c["generations"]
            for k, v in g["metrics"].items() if v is not None}


def _png_size(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.size  # (width, height)


@pytest.mark.slow
def test_the_run_was_interrupted_after_logging_and_resumed_into_the_same_tracker_runs(tracked):
    out, results = tracked["out"], tracked["results"]
    assert results["complete"]
    assert sorted((next(iter(r["metrics"])).split("/")[0], r["step"]) for r in tracked["before"]) == [(FIRST, 0), (FIRST, 1)]
    state = json.loads((out / "tracking" / "state.json").read_text())["trackers"]
    assert sorted(state) == sorted(ALL) == sorted(trackers.previous(out))
    for name, entry in state.items():
        assert entry["config"] and entry["artifacts"], name
        assert {c: sorted(g) for c, g in entry["logged"].items()} == {c["id"]: [0, 1] for c in results["chains"]}, name


@pytest.mark.slow
def test_disk_tracker_logs_config_once_each_generation_at_its_step_and_the_plots(tracked):
    out, results = tracked["out"], tracked["results"]
    assert json.loads((out / "tracking" / "config.json").read_text()) == results["config"]
    rows = _rows(out / "tracking" / "metrics.jsonl")
    assert Counter((k.split("/")[0], r["step"]) for r in rows for k in r["metrics"] if k.endswith("/perplexity")) == \
        {(c["id"], g): 1 for c in results["chains"] for g in (0, 1)}  # once each, across the resume
    assert len(rows) == 2 * 2
    logged = {(k, r["step"]): v for r in rows for k, v in r["metrics"].items()}
    assert _expected(results).items() <= logged.items()
    artifacts = json.loads((out / "tracking" / "artifacts.json").read_text())
    assert "headline.png" in artifacts and "report.html" in artifacts


@pytest.mark.slow
def test_tensorboard_event_files_read_back(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, results = tracked["out"], tracked["results"]
    files = sorted((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 2  # the first process's and the resume's
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    for (tag, step), value in _expected(results).items():
        events = [e for e in acc.Scalars(tag) if e.step == step]
        assert len(events) == 1, (tag, step, events)  # once, though the first process logged it before the resume
        assert events[0].value == pytest.approx(value, rel=1e-5)
    (text,) = acc.Tensors("config/text_summary")  # the config once, as markdown text at step 0
    config = json.loads(text.tensor_proto.string_val[0].decode().strip().strip("`"))
    assert config == results["config"]
    pngs = sorted((out / "report").glob("*.png"))
    assert pngs and sorted(acc.Tags()["images"]) == sorted(f"report/{p.stem}" for p in pngs)
    for png in pngs:
        (image,) = acc.Images(f"report/{png.stem}")
        assert (image.width, image.height) == _png_size(png)


@pytest.mark.slow
def test_mlflow_file_store_reads_back(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    out, results = tracked["out"], tracked["results"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads a file store only with it
    # the notebook's mlflow.set_tracking_uri set MLFLOW_TRACKING_URI: madbench honours it (its own client and run)
    client = MlflowClient(tracking_uri=tracked["user_uri"])
    runs = client.search_runs([client.get_experiment_by_name("madbench").experiment_id])
    (run,) = _parents(runs)  # one run across the resume
    children = {r.data.tags["madbench.chain"]: r for r in runs if r not in _parents(runs)}
    assert sorted(children) == sorted(c["id"] for c in results["chains"])  # one child run per chain, nested
    for chain in results["chains"]:
        child = children[chain["id"]]
        assert child.data.tags["mlflow.parentRunId"] == run.info.run_id and child.info.status == "FINISHED"
        for g in chain["generations"]:
            (m,) = [m for m in client.get_metric_history(child.info.run_id, "perplexity") if m.step == g["generation"]]
            assert m.value == pytest.approx(g["metrics"]["perplexity"])
    assert run.info.status == "FINISHED" and run.info.run_name == results["config"]["name"]
    flat = flatten(results["config"])
    assert run.data.params == {trackers._mlflow_key(k): str(v)[:500] for k, v in flat.items()}
    assert run.data.params["loop.generations"] == "1"
    for (tag, step), value in _expected(results).items():
        history = [m for m in client.get_metric_history(run.info.run_id, tag.replace("+", "_")) if m.step == step]
        assert len(history) == 1 and history[0].value == pytest.approx(value), (tag, step, history)
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert top == {"config.json", "report"}
    assert json.loads(Path(client.download_artifacts(run.info.run_id, "config.json", str(out.parent))).read_text()) == results["config"]
    report = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report")}
    assert {p.name for p in (out / "report").iterdir() if p.is_file()} <= report


def _parents(runs):
    """The madbench runs among MLflow runs (their chains' child runs carry mlflow.parentRunId)."""
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def _wandb_records(run_folder: Path):
    """The records of a .wandb transaction log, read by wandb's own reader (`wandb leet inspect --json`)."""
    (log,) = run_folder.glob("run-*.wandb")
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(log)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_wandb_offline_run_reads_back(tracked):
    out, results = tracked["out"], tracked["results"]
    folders = sorted((out / "wandb").glob("offline-run-*"))
    assert len(folders) == 2  # the first process's and the resume's: one wandb run, resumed
    records = [r for folder in folders for r in _wandb_records(folder)]
    runs = [r["run"] for r in records if r["type"] == "run"]
    assert len({r["run_id"] for r in runs}) == 1 and [bool(r.get("resume")) for r in runs] == [False, True]
    assert [r["exit"].get("exit_code", 0) for r in records if r["type"] == "exit"] == [1, 0]  # interrupted, then finished
    config = {}
    for r in records:
        if r["type"] == "config":
            config.update(r["config"].get("update", {}))
    config.pop("_wandb", None)
    assert config == results["config"]
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    logged = Counter((k, h["generation"]) for h in history if "generation" in h for k in h if "/" in k and not k.startswith("report/"))
    expected = _expected(results)
    assert set(expected) <= set(logged) and set(logged.values()) == {1}  # every value once, across the resume
    values = {(k, h["generation"]): h[k] for h in history if "generation" in h for k in h if (k, h.get("generation")) in expected}
    assert all(values[key] == pytest.approx(v) for key, v in expected.items())
    images = {k: v for h in history for k, v in h.items() if k.startswith("report/")}  # flattened: report/NAME.width
    for png in sorted((out / "report").glob("*.png")):
        assert images[f"report/{png.stem}._type"] == "image-file"
        assert (images[f"report/{png.stem}.width"], images[f"report/{png.stem}.height"]) == _png_size(png)


@pytest.mark.slow
def test_a_notebooks_own_mlflow_and_wandb_runs_are_left_alone(tracked):
    import mlflow
    from mlflow.tracking import MlflowClient

    nb = tracked["notebook"]
    assert nb["mlflow_uri"] == tracked["user_uri"]  # madbench did not move the notebook's tracking URI
    assert nb["mlflow_active"] is not None and nb["mlflow_active"].run_id == tracked["user_mlflow"]
    assert nb["wandb_run"] is tracked["user_wandb"]  # ...nor finish or replace its wandb run
    user = MlflowClient(tracking_uri=tracked["user_uri"]).get_run(tracked["user_mlflow"])
    assert user.data.metrics == {} and user.data.params == {}  # and logged nothing into it
    assert mlflow.active_run() is None


# ---------------------------------------------------------------- the logger on its own, on real results
def _cfg():
    from madbench.config.run_config import build_config
    from madbench.config.presets import PRESETS

    return build_config(PRESETS.get("smoke")(), None, SMALL)


@pytest.mark.slow
def test_each_generation_once_per_run_however_often_results_arrive_or_the_run_resumes(tracked, tmp_path):
    results = tracked["results"]
    first = trackers.GenerationLogger(["disk", "disk"], tmp_path, _cfg(), log=lambda *a: None)  # a repeated name: one tracker
    part = {"chains": [results["chains"][0]]}
    first.on_results(part)
    first.on_results(part)
    del first  # killed: never finished
    second = trackers.GenerationLogger(["disk"], tmp_path, _cfg(), log=lambda *a: None)
    second.on_results(results)
    second.on_results(results)
    second.finish(None)
    rows = _rows(tmp_path / "tracking" / "metrics.jsonl")
    assert len(rows) == 2 * 2
    assert sorted((next(iter(r["metrics"])).split("/")[0], r["step"]) for r in rows) == \
        sorted((c["id"], g) for c in results["chains"] for g in (0, 1))


@pytest.mark.slow
def test_a_killed_process_loses_nothing_it_counted_as_logged(tracked, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"chains": tracked["results"]["chains"][:1]}))
    script = ("import json, os, signal, sys; from pathlib import Path; from madbench.reporting import trackers; "
              "from madbench.config.run_config import build_config; from madbench.config.presets import PRESETS; "
              f"cfg = build_config(PRESETS.get('smoke')(), None, {SMALL!r}); "
              "logger = trackers.GenerationLogger(['tensorboard', 'mlflow'], Path(sys.argv[1]), cfg); "
              "logger.on_results(json.loads(Path(sys.argv[2]).read_text())); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run"), str(results)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == -9, proc.stderr[-2000:]
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert sorted(e.step for e in acc.Scalars(f"{FIRST}/perplexity")) == [0, 1]  # flushed before state.json counted it
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "run" / "mlruns").resolve().as_uri())
    (run,) = _parents(client.search_runs([client.get_experiment_by_name("madbench").experiment_id]))
    assert run.info.status == "RUNNING"  # nobody could mark it
    resumed = trackers.GenerationLogger(["tensorboard", "mlflow"], tmp_path / "run", _cfg(), log=lambda *a: None)
    resumed.on_results(tracked["results"])
    resumed.finish(None)
    (run,) = _parents(client.search_runs([client.get_experiment_by_name("madbench").experiment_id]))
    assert run.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, f"{FIRST}/perplexity")) == [0, 1]
    acc.Reload()
    assert sorted(e.step for e in acc.Scalars(f"{FIRST}/perplexity")) == [0, 1]
    assert len(acc.Scalars(f"{tracked['results']['chains'][1]['id']}/perplexity")) == 2


@pytest.mark.slow
def test_a_tracker_that_fails_mid_run_is_a_warning_and_its_generations_are_sent_on_resume(tracked, tmp_path, request):
    class Flaky(trackers.DiskTracker):
        fail = True

        def log_metrics(self, metrics, step):
            if Flaky.fail:
                raise OSError("the tracking server went away")
            super().log_metrics(metrics, step)

    trackers.TRACKERS.add("flaky", Flaky, "test")
    request.addfinalizer(lambda: trackers.TRACKERS.remove("flaky"))
    said = []
    logger = trackers.GenerationLogger(["flaky"], tmp_path, _cfg(), log=said.append)
    logger.on_results(tracked["results"])  # no exception: the training goes on
    assert len(said) == 1 and "report_to=flaky stopped logging (OSError: the tracking server went away)" in said[0]
    assert not logger.trackers and not (tmp_path / "tracking" / "metrics.jsonl").exists()
    Flaky.fail = False
    resumed = trackers.GenerationLogger(["flaky"], tmp_path, _cfg(), log=said.append)
    resumed.on_results(tracked["results"])
    resumed.finish(None)
    assert len(_rows(tmp_path / "tracking" / "metrics.jsonl")) == 2 * 2


def test_a_tracker_that_cannot_start_or_a_damaged_state_file_is_one_line(tmp_path):
    (tmp_path / "tensorboard").write_text("not a folder")
    with pytest.raises(MadbenchError, match=r"^report_to=tensorboard failed to start \(\w+Error: .*\)$") as err:
        trackers.GenerationLogger(["disk", "tensorboard"], tmp_path, _cfg(), log=lambda *a: None)
    assert "\n" not in str(err.value)
    (tmp_path / "tracking" / "state.json").write_text("{not json")
    with pytest.raises(MadbenchError, match="state.json is damaged .* delete it and resume"):
        trackers.GenerationLogger(["disk"], tmp_path, _cfg(), log=lambda *a: None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tensorboard", "mlflow", "wandb"])
def test_a_missing_tracker_package_is_one_line_with_the_install_command_before_any_training(tmp_path, monkeypatch, name):
    if name == "mlflow":  # the CLI once (a subprocess costs seconds), with the package made unimportable
        hide = f"import sys; sys.modules[{name!r}] = None; from madbench.cli import main; sys.exit(main(sys.argv[1:]))"
        proc = subprocess.run([sys.executable, "-c", hide, "run", "--preset", "smoke", "--report-to", "disk", "--report-to",
                               name, "--output-dir", str(tmp_path / "run"), *SMALL], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=os.environ.copy())
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
        assert f"report_to={name} needs the {name} package" in lines[0] and f"pip install 'madbench[{name}]'" in lines[0]
        assert not (tmp_path / "run").exists()
    monkeypatch.setitem(sys.modules, name, None)  # as in an environment without the extra
    with pytest.raises(MadbenchError, match=f"^report_to={name} needs the {name} package, which is not installed; "
                                            f"run: pip install 'madbench\\[{name}\\]'"):
        mb.run({}, preset="smoke", output_dir=tmp_path / "api", report_to=["disk", name])
    assert not (tmp_path / "api").exists()


def test_an_unknown_tracker_gets_a_did_you_mean(capsys):
    from madbench.cli import main

    assert main(["run", "--preset", "smoke", "--report-to", "tensorbord", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "madbench: error: unknown tracker 'tensorbord' in report_to; did you mean 'tensorboard'? " \
                  "known: disk, tensorboard, mlflow, wandb"


def test_trackers_honour_their_own_variables_and_the_tracking_keys(tracked, tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME, WANDB_PROJECT / WANDB_RUN_GROUP / WANDB_DIR, tracking.* keys;
    intervals and mitigation statistics logged; one MLflow child run per chain. Read back by each package."""
    from mlflow.tracking import MlflowClient

    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    store = (tmp_path / "store").resolve().as_uri()
    for var, value in {"MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": "env-exp", "WANDB_PROJECT": "proj",
                       "WANDB_RUN_GROUP": "grp", "WANDB_DIR": str(tmp_path / "wb"), "MLFLOW_ALLOW_FILE_STORE": "true"}.items():
        monkeypatch.setenv(var, value)
    cfg = build_config(PRESETS.get("smoke")(), None, [*SMALL, "tracking.run_name=my-run", "tracking.tags=[team=nlp,ablation]"])
    logger = trackers.GenerationLogger(["mlflow", "wandb"], tmp_path / "run", cfg, log=lambda *a: None)
    logger.on_results(tracked["results"])
    logger.finish(None)
    assert not (tmp_path / "run" / "mlruns").exists() and not (tmp_path / "run" / "wandb").exists()
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("env-exp").experiment_id])
    (parent,) = _parents(runs)
    assert parent.info.run_name == "my-run" and parent.data.tags["team"] == "nlp" and "ablation" in parent.data.tags
    chains = {c["id"]: c for c in tracked["results"]["chains"]}
    children = {r.data.tags["madbench.chain"]: r for r in runs if r not in _parents(runs)}
    assert sorted(children) == sorted(chains) and all(r.data.tags["team"] == "nlp" for r in children.values())
    mitigated = next(c for c in chains.values() if c["mitigations"])
    child = children[mitigated["id"]]
    low, high = mitigated["generations"][-1]["intervals"]["perplexity"]
    assert child.data.metrics["perplexity.ci_low"] == pytest.approx(low) and child.data.metrics["perplexity.ci_high"] == pytest.approx(high)
    stats = {k for k in child.data.metrics if k.startswith("mitigation/")}
    assert {k.split("/")[2] for k in stats} >= set(mitigated["mitigations"]), stats  # e.g. mitigation/mix/mix_real/real_added
    (folder,) = (tmp_path / "wb" / "wandb").glob("offline-run-*")
    (run,) = [r["run"] for r in _wandb_records(folder) if r["type"] == "run"]
    assert (run["project"], run["run_group"], run["display_name"]) == ("proj", "grp", "my-run")
    assert sorted(run["tags"]) == ["ablation", "team=nlp"]
    # the config key beats the variable
    cfg = build_config(PRESETS.get("smoke")(), None, [*SMALL, "tracking.experiment=cfg-exp"])
    logger = trackers.GenerationLogger(["mlflow"], tmp_path / "run2", cfg, log=lambda *a: None)
    logger.finish(None)
    assert client.get_experiment_by_name("cfg-exp") is not None
