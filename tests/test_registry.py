"""One registry for every named choice: lazy "module:object" entries, self-registering modules,
`madbench list` of every kind, and trackers and lm-eval models from plug-ins (issues 25 and 29).

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_registry.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, madbench

from madbench.errors import MadbenchError
from madbench.registry import Registry


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def section(stdout: str, kind: str) -> dict:
    """{name: row} of one kind in `madbench list` output."""
    out, inside = {}, False
    for line in stdout.splitlines():
        if not line.startswith("  "):
            inside = line == f"{kind}:"
        elif inside:
            out[line.split()[0]] = line
    return out


def test_a_lazy_entry_is_imported_on_first_get_and_a_broken_one_is_one_line(tmp_path, monkeypatch):
    write(tmp_path / "lazy_target_mod.py", "IMPORTED = True\ndef thing():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget")
    reg.add_lazy("answer", "lazy_target_mod:thing")
    reg.add_lazy("missing", "no_such_module_xyz:thing")
    assert "lazy_target_mod" not in sys.modules and reg.target("answer") == "lazy_target_mod:thing"
    assert reg.get("answer")() == 42 and reg.target("answer") is None  # imported once, then held
    with pytest.raises(MadbenchError, match=r"^widget 'missing' \(no_such_module_xyz:thing\) failed to import: "
                                            r"ModuleNotFoundError: No module named 'no_such_module_xyz'$"):
        reg.get("missing")
    with pytest.raises(MadbenchError, match="unknown widget 'answr'; did you mean 'answer'?"):
        reg.get("answr")


def test_a_new_file_in_metrics_registers_itself_without_an_import_edit(tmp_path):
    """A copy of the package with one more module in metrics/ and mitigations/: both show up in `madbench list`."""
    copy = tmp_path / "src" / "madbench"
    shutil.copytree(ROOT / "madbench", copy, ignore=shutil.ignore_patterns("__pycache__"))
    write(copy / "metrics" / "word_count.py", '''
        """A metric added as a file, with no other edit."""
        from madbench.metrics import METRICS


        @METRICS.register("word_count", higher_is_better=None, needs="samples")
        def word_count(ctx):
            """Total words over the samples."""
            return float(sum(len(s.split()) for s in ctx.samples))
    ''')
    write(copy / "mitigations" / "keep_all.py", '''
        """A mitigation added as a file, with no other edit."""
        from madbench.mitigations import MITIGATIONS, Mitigation


        @MITIGATIONS.register("keep_all")
        class KeepAll(Mitigation):
            """Keeps every sample."""
            target_metric = "word_count"
    ''')
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    proc = subprocess.run([sys.executable, "-m", "madbench", "list"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert section(proc.stdout, "metrics")["word_count"].split()[1] == "builtin"
    assert "[targets word_count] Keeps every sample." in section(proc.stdout, "mitigations")["keep_all"]


def test_list_shows_every_kind_with_origins_targets_and_imports_no_lazy_entry():
    code = textwrap.dedent("""
        import sys
        from madbench.cli import main
        rc = main(["list"])
        print("LM_EVAL_IMPORTED", "lm_eval" in sys.modules, rc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "LM_EVAL_IMPORTED False 0"  # listing imported no lazy entry
    kinds = [line[:-1] for line in proc.stdout.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert kinds == ["regimes", "mitigations", "metrics", "presets", "corpora", "models", "tracks",
                     "sampling_backends", "trackers", "sweep_backends", "lm_eval_models", "monitor_rules"]
    assert set(section(proc.stdout, "sampling_backends")) == {"hf", "vllm"}
    assert set(section(proc.stdout, "trackers")) == {"disk", "tensorboard", "mlflow", "wandb"}
    assert set(section(proc.stdout, "sweep_backends")) == {"local", "ray", "slurm"}
    lm = section(proc.stdout, "lm_eval_models")
    assert lm["madbench"].split()[1] == "builtin" and "(lazy: madbench.evaluation.lmeval_model:MadbenchLM)" in lm["madbench"]
    assert "[targets distinct_2]" in section(proc.stdout, "mitigations")["dedup"]
    assert {"any_leading", "any_leading_10pct", "cusum_distinct_2"} <= set(section(proc.stdout, "monitor_rules"))


@pytest.mark.parametrize("override, expected", [
    ("sampling.backend=vlm", "unknown sampling.backend 'vlm'; did you mean 'vllm'? use hf or vllm"),
    ("eval.lm_eval_model=madbnch", "unknown eval.lm_eval_model 'madbnch'; did you mean 'madbench'? use madbench or hf"),
])
def test_an_unknown_backend_or_lm_eval_model_is_one_line_with_did_you_mean(override, expected):
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    with pytest.raises(MadbenchError) as err:
        build_config(PRESETS.get("smoke")(), None, [override])
    assert str(err.value) == expected


def test_an_entry_point_tracker_is_listed_and_accepted_by_report_to(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site / "outside_tracker" / "__init__.py", '''
        class NullTracker:
            """Logs nothing, from outside madbench."""

            def __init__(self, run_dir, name, run_id=None):
                self.run_id, self.resumed = None, False

            def log_config(self, config): pass
            def log_metrics(self, metrics, step): pass
            def log_artifacts(self, folder): pass
            def close(self): pass


        class NotATracker:
            """Has no log_metrics."""

            def __init__(self, run_dir, name, run_id=None): pass
    ''')
    info = site / "outside_tracker-0.0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: outside-tracker\nVersion: 0.0.1\n")
    write(info / "entry_points.txt", "[madbench.trackers]\nnull = outside_tracker:NullTracker\nbroken = outside_tracker:NotATracker\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = madbench("list", "trackers", check=True)
    rows = section(proc.stdout, "trackers")
    assert "entry point outside-tracker 0.0.1" in rows["null"] and "broken" not in rows
    assert "tracker 'broken' must be a class with log_config, log_metrics, log_artifacts and close" in proc.stderr
    proc = madbench("run", "--preset", "smoke", "--report-to", "null", "--dry-run", check=True)
    assert "pre-flight: ok" in proc.stdout


TRACKER_AND_LM = '''
import json
import os
from pathlib import Path

from madbench.evaluation.lm_models import LM_EVAL_MODELS
from madbench.evaluation.lmeval_model import MadbenchLM
from madbench.reporting.trackers import TRACKERS


@TRACKERS.register("jsonl_tracker")
class JsonlTracker:
    """Appends every call to RUN/jsonl_tracker.jsonl."""

    def __init__(self, run_dir, name, run_id=None):
        self.path, self.run_id, self.resumed = Path(run_dir) / "jsonl_tracker.jsonl", None, False

    def _write(self, kind, **payload):
        with self.path.open("a") as f:
            f.write(json.dumps({"kind": kind, **payload}) + "\\n")

    def log_config(self, config):
        self._write("config", name=config["name"])

    def log_metrics(self, metrics, step):
        self._write("metrics", step=step, metrics=metrics)

    def log_artifacts(self, folder):
        self._write("artifacts", folder=str(folder))

    def close(self):
        self._write("close")


@LM_EVAL_MODELS.register("counting_lm")
class CountingLM(MadbenchLM):
    """madbench's lm-eval model, counting the requests it scores."""

    def _loglikelihood_tokens(self, requests, disable_tqdm=False, **kwargs):
        marker = Path(os.environ["LM_MARKER"])
        marker.write_text(str(int(marker.read_text() or 0) + len(requests)) if marker.exists() else str(len(requests)))
        return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, **kwargs)
'''


@pytest.mark.slow
def test_a_plugin_tracker_logs_and_a_plugin_lm_eval_class_scores_a_real_run(tmp_path, monkeypatch):
    plugin = write(tmp_path / "tracker_and_lm.py", TRACKER_AND_LM)
    marker = tmp_path / "lm_requests"
    monkeypatch.setenv("LM_MARKER", str(marker))
    run = tmp_path / "run"
    proc = madbench("run", "--plugin", plugin, "--preset", "smoke", "--output-dir", run, "--report-to", "jsonl_tracker",
                    "loop.generations=0", "loop.regimes=[fully_synthetic]", "eval.tasks=[madbench_cloze]", "eval.task_docs=4",
                    "eval.metrics=[perplexity]", "eval.lm_eval_model=counting_lm", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(marker.read_text()) > 0  # the plug-in's LM class scored the task
    results = json.loads((run / "results.json").read_text())
    gen0 = results["chains"][0]["generations"][0]
    assert any(k.startswith("madbench_cloze") for k in gen0["metrics"]), sorted(gen0["metrics"])
    logged = [json.loads(line) for line in (run / "jsonl_tracker.jsonl").read_text().splitlines()]
    assert logged[0] == {"kind": "config", "name": "smoke"} and logged[-1] == {"kind": "close"}
    steps = [r for r in logged if r["kind"] == "metrics"]
    assert steps and any(key.endswith("/perplexity") and value > 1 for r in steps for key, value in r["metrics"].items())
