"""Experiment trackers: the config once, every generation's metrics (step = generation), the plots at the end.

    madbench run --preset smoke --report-to tensorboard        # RUN/tensorboard (tensorboard --logdir RUN)
    madbench run --preset smoke --report-to mlflow,wandb       # RUN/mlruns (file store), RUN/wandb (offline)
    madbench.run(cfg, output_dir="runs/x", report_to=["disk"]) # RUN/tracking/*.json(l), no extra package

None by default. Only the main process logs. ``disk`` needs nothing; the others are
optional extras (``pip install 'madbench[tensorboard]'``, ``[mlflow]``, ``[wandb]``); a
missing package is one line with the install command, before any training. wandb runs
offline unless ``WANDB_MODE`` says otherwise (sync later with ``wandb sync RUN/wandb``).
MLflow 3 keeps its file store only behind ``MLFLOW_ALLOW_FILE_STORE=true``, which the
mlflow tracker sets unless you set it yourself (set it too to read RUN/mlruns back).

A chain's metrics are logged as ``<chain id>/<metric>`` at step = generation, so every
chain is one curve. A tracker is a :class:`Tracker`; register your own in ``TRACKERS``.

Resume: RUN/tracking/state.json (written atomically after each batch is flushed) records,
per tracker, its run id, whether the config and the report went out, and which (chain,
generation) it has logged. ``madbench run --resume`` continues the same MLflow and wandb
runs and logs only what is new, so each (chain, generation) is logged once per run. A
process killed between a flush and that write logs its last batch again on resume.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

from madbench.results import fileio
from madbench.config.dotted import flatten
from madbench.errors import MadbenchError
from madbench.registry import did_you_mean

STATE = Path("tracking") / "state.json"  # under the run folder
_OPEN: Dict[str, "GenerationLogger"] = {}  # run folder -> the logger this process holds open there


class Tracker(Protocol):
    """Built as ``cls(run_dir, name, run_id=None)``: ``run_id`` is what an earlier process of the same run
    stored (``self.run_id``, or None); ``self.resumed`` says the tracker continues that earlier output
    (when False, everything is logged again). ``flush`` (optional) makes what was logged durable."""

    run_id: Optional[str]
    resumed: bool

    def log_config(self, config: dict) -> None: ...
    def log_metrics(self, metrics: Dict[str, float], step: int) -> None: ...
    def log_artifacts(self, folder: Path) -> None: ...  # the run's report folder (plots, report.md/html)
    def close(self) -> None: ...


class DiskTracker:
    """RUN/tracking/config.json, metrics.jsonl ({step, metrics} per generation) and artifacts.json."""

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None):
        self.dir = Path(run_dir) / "tracking"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_id = None
        self.resumed = (self.dir / "metrics.jsonl").is_file() or (self.dir / "config.json").is_file()

    def log_config(self, config):
        fileio.write_json(self.dir / "config.json", config)

    def log_metrics(self, metrics, step):
        fileio.append_jsonl(self.dir / "metrics.jsonl", {"step": step, "metrics": metrics})

    def log_artifacts(self, folder):
        fileio.write_json(self.dir / "artifacts.json", sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()))

    def close(self):
        pass


class TensorBoardTracker:
    """Event files in RUN/tensorboard: scalars per chain and metric, the config as text, the plots as images."""

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None):
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(run_dir) / "tensorboard"
        self.run_id = None
        self.resumed = folder.is_dir() and any(folder.glob("events.out.tfevents.*"))
        self.writer = SummaryWriter(log_dir=str(folder))  # a resumed run adds an event file beside the first

    def log_config(self, config):
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_metrics(self, metrics, step):
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def log_artifacts(self, folder):
        import matplotlib.image as mpimg

        for png in sorted(Path(folder).glob("*.png")):
            self.writer.add_image(f"report/{png.stem}", mpimg.imread(png)[..., :3], 0, dataformats="HWC")

    def flush(self):
        self.writer.flush()  # by itself the writer flushes every 2 minutes: a kill would lose what state.json counts

    def close(self):
        self.writer.close()


class MlflowTracker:
    """An MLflow run in the file store RUN/mlruns: params from the config, metrics per step, the report as artifacts.

    Through an ``MlflowClient`` of its own: the caller's tracking URI and active run (a notebook's) are untouched."""

    BATCH = 100  # MLflow's limit on params per log_batch call

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None):
        from mlflow.tracking import MlflowClient

        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a file store without it
        self.client = MlflowClient(tracking_uri=(Path(run_dir) / "mlruns").resolve().as_uri())
        self.resumed = False
        if run_id:
            try:
                self.client.get_run(run_id)
                self.client.update_run(run_id, status="RUNNING")
                self.resumed = True
            except Exception:  # the store was deleted or moved: a new run gets everything
                run_id = None
        if not run_id:
            experiment = self.client.get_experiment_by_name("madbench")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("madbench")
            run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        self.run_id = run_id

    def log_config(self, config):
        from mlflow.entities import Param

        params = [Param(_mlflow_key(k), str(v)[:500]) for k, v in flatten(config).items()]
        for i in range(0, len(params), self.BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + self.BATCH])
        self.client.log_dict(self.run_id, config, "config.json")

    def log_metrics(self, metrics, step):
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(_mlflow_key(k), v, now, step) for k, v in metrics.items()]
        for i in range(0, len(rows), 1000):  # MLflow's limit on metrics per log_batch call
            self.client.log_batch(self.run_id, metrics=rows[i:i + 1000])

    def log_artifacts(self, folder):
        self.client.log_artifacts(self.run_id, str(folder), artifact_path="report")

    def abort(self):
        self.client.set_terminated(self.run_id, status="KILLED")

    def close(self):
        self.client.set_terminated(self.run_id, status="FINISHED")


class WandbTracker:
    """A wandb run in RUN/wandb, offline by default; ``generation`` is the step metric of every chain's curves.

    A run of its own (``reinit="create_new"``): a notebook's active wandb run is neither finished nor written to."""

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None):
        import wandb

        self.wandb = wandb
        if run_id and not any((Path(run_dir) / "wandb").glob(f"*-{run_id}")):
            run_id = None  # the earlier run's folder is gone: a new run gets everything
        resume = {"id": run_id, "resume": "allow"} if run_id else {}
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "madbench"), name=name, dir=str(run_dir),
                              mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new", **resume)
        self.run_id = self.run.id
        self.resumed = bool(run_id) and self.run.id == run_id
        # chains restart at generation 0: a shared monotonic step would drop them, a step metric does not
        self.run.define_metric("generation")
        self.run.define_metric("*", step_metric="generation")

    def log_config(self, config):
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics, step):
        self.run.log({"generation": step, **metrics})

    def log_artifacts(self, folder):
        images = {f"report/{p.stem}": self.wandb.Image(str(p)) for p in sorted(Path(folder).glob("*.png"))}
        if images:
            self.run.log(images)
        artifact = self.wandb.Artifact("report", type="report")
        artifact.add_dir(str(folder))
        self.run.log_artifact(artifact)

    def abort(self):
        self.run.finish(exit_code=1)

    def close(self):
        self.run.finish()


# name -> (class, module it needs or None, install command)
TRACKERS: Dict[str, tuple] = {
    "disk": (DiskTracker, None, ""),
    "tensorboard": (TensorBoardTracker, "tensorboard", "pip install 'madbench[tensorboard]' (or: pip install tensorboard)"),
    "mlflow": (MlflowTracker, "mlflow", "pip install 'madbench[mlflow]' (or: pip install mlflow-skinny)"),
    "wandb": (WandbTracker, "wandb", "pip install 'madbench[wandb]' (or: pip install wandb)"),
}


def check(names: Sequence[str]) -> List[str]:
    """Validate tracker names and that their packages are installed; one line otherwise."""
    names = [names] if isinstance(names, str) else list(names or ())
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip() and n.strip() != "none"]
    for name in names:
        if name not in TRACKERS:
            raise MadbenchError(f"unknown tracker '{name}' in report_to;{did_you_mean(name, TRACKERS)} known: {', '.join(TRACKERS)}")
        _, module, install = TRACKERS[name]
        if module and importlib.util.find_spec(module) is None:
            raise MadbenchError(f"report_to={name} needs the {module} package, which is not installed; run: {install}")
    return list(dict.fromkeys(names))  # `--report-to disk --report-to disk` is one tracker, not two


def previous(run_dir: Path) -> List[str]:
    """The trackers an earlier process of this run logged to (from RUN/tracking/state.json), for a resume."""
    return list(_read_state(Path(run_dir)))


def _read_state(run_dir: Path) -> Dict[str, dict]:
    path = run_dir / STATE
    if not path.is_file():
        return {}
    try:
        data = fileio.read_json(path)
        trackers = data["trackers"]
        assert isinstance(trackers, dict) and all(isinstance(v.get("logged"), dict) for v in trackers.values())
        return trackers
    except Exception as exc:
        raise MadbenchError(f"{path} is damaged ({type(exc).__name__}: {exc}); delete it and resume to log every "
                            "generation again")



def _mlflow_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)  # chain ids join mitigations with '+'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class GenerationLogger:
    """The run's callback: opens the trackers, logs each finished generation once per run (across resumes), closes them."""

    def __init__(self, names: Sequence[str], run_dir: Path, cfg, log: Callable = print):
        self.run_dir = Path(run_dir)
        self.key = str(self.run_dir.resolve())
        stale = _OPEN.get(self.key)
        if stale is not None:  # an earlier run of this folder in this process was interrupted (a notebook's Ctrl-C)
            stale.abort()
        self.trackers: Dict[str, Any] = {}
        self.log = log
        self.state = _read_state(self.run_dir)
        self.logged_now: set = set()  # trackers that logged a new generation in this process
        try:
            for name in check(names):
                entry = self.state.get(name) or {}
                try:
                    tracker = TRACKERS[name][0](self.run_dir, cfg.name, run_id=entry.get("run_id"))
                    self.trackers[name] = tracker
                    if not getattr(tracker, "resumed", False):
                        entry = {}  # a new destination: it gets the config and every generation
                    entry = {"run_id": getattr(tracker, "run_id", None), "config": entry.get("config", False),
                             "artifacts": entry.get("artifacts", False), "logged": entry.get("logged", {})}
                    if not entry["config"]:
                        tracker.log_config(cfg.to_dict())
                        _flush(tracker)
                        entry["config"] = True
                except ImportError as exc:
                    raise MadbenchError(f"report_to={name} failed to start ({exc}); run: {TRACKERS[name][2]}")
                except MadbenchError:
                    raise
                except Exception as exc:  # a tracker that cannot start: one line, before any training
                    raise MadbenchError(f"report_to={name} failed to start ({_first_line(exc)})")
                self.state[name] = entry
            self._save()
        except BaseException:
            self._close_all(abort=True)
            raise
        atexit.register(self.abort)  # an interrupted run: flush and mark the tracker runs as killed
        _OPEN[self.key] = self

    def on_results(self, results: dict) -> None:
        """Log every (chain, generation) of results.json that no earlier call or process logged, step = generation."""
        rows = []
        for chain in results["chains"]:
            for gen in chain["generations"]:
                values = {**gen["metrics"], "synthetic_fraction": gen.get("synthetic_fraction"),
                          "train_loss_last": gen.get("train_loss_last")}
                metrics = {f"{chain['id']}/{k}": float(v) for k, v in values.items() if isinstance(v, (int, float))}
                rows.append((chain["id"], int(gen["generation"]), metrics))
        changed = False
        for name, tracker in list(self.trackers.items()):
            logged = self.state[name]["logged"]
            todo = [row for row in rows if row[1] not in logged.get(row[0], [])]
            if not todo:
                continue
            try:
                for _, generation, metrics in todo:
                    tracker.log_metrics(metrics, generation)
                _flush(tracker)
            except Exception as exc:  # the results are saved; a failing tracker must not stop the training
                self.log(f"madbench: warning: report_to={name} stopped logging ({_first_line(exc)}); "
                         "the rest of this run is not sent to it (resume the run to send it)")
                self._close(name, abort=True)
                continue
            for chain_id, generation, _ in todo:
                logged.setdefault(chain_id, []).append(generation)
            self.logged_now.add(name)
            changed = True
        if changed:
            self._save()

    def finish(self, report_dir: Path | None) -> None:
        for name, tracker in list(self.trackers.items()):
            entry = self.state[name]
            try:
                # the report once, and again only when this process logged something new for it
                if report_dir is not None and Path(report_dir).is_dir() and (name in self.logged_now or not entry["artifacts"]):
                    tracker.log_artifacts(Path(report_dir))
                    entry["artifacts"] = True
            except Exception as exc:  # results are saved; a tracker's upload must not fail the run
                self.log(f"madbench: warning: {type(tracker).__name__} could not log the report ({type(exc).__name__}: {exc})")
            self._close(name)
        self._save()
        self._release()

    def _save(self) -> None:
        fileio.write_json(self.run_dir / STATE, {"version": 1, "trackers": self.state})

    def _close(self, name: str, abort: bool = False) -> None:
        tracker = self.trackers.pop(name)
        try:
            _flush(tracker)
            getattr(tracker, "abort", tracker.close)() if abort else tracker.close()
        except Exception as exc:
            self.log(f"madbench: warning: report_to={name} did not close cleanly ({_first_line(exc)})")

    def _close_all(self, abort: bool = False) -> None:
        for name in list(self.trackers):
            self._close(name, abort=abort)

    def abort(self) -> None:
        """Close the trackers of a failed or interrupted run (flushed, MLflow run KILLED, wandb exit code 1); a resume
        continues them. Called at interpreter exit, or when this folder is run again in the same process."""
        self._close_all(abort=True)
        self._release()

    def _release(self) -> None:
        atexit.unregister(self.abort)
        if _OPEN.get(self.key) is self:
            del _OPEN[self.key]


def _flush(tracker) -> None:
    flush = getattr(tracker, "flush", None)
    if flush is not None:
        flush()
