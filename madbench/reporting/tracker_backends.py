"""The trackers ``--report-to`` can log to: disk, TensorBoard, MLflow (file store), wandb (offline).

    madbench run --preset smoke --report-to disk,tensorboard

Each implements :class:`Tracker`; madbench/reporting/trackers.py registers them (``TRACKERS``), checks
that their packages are installed, and drives them once per generation across resumes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, Optional, Protocol

from madbench.config.dotted import flatten
from madbench.results import fileio


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


def _mlflow_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)  # chain ids join mitigations with '+'
