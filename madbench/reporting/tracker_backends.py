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
from dataclasses import dataclass
from typing import Dict, Optional, Protocol, Tuple

from madbench.config.dotted import flatten
from madbench.results import fileio


@dataclass(frozen=True)
class TrackerSettings:
    """What the config's ``tracking`` section and the trackers' own environment variables say (passed to a tracker
    whose constructor takes ``settings=``). Precedence: the config key, then the variable, then madbench's default."""

    experiment: str = ""  # tracking.experiment
    run_name: str = ""  # tracking.run_name ('' = the run's name)
    tags: Tuple[str, ...] = ()  # tracking.tags: 'key=value' or 'label'

    @classmethod
    def from_config(cls, cfg) -> "TrackerSettings":
        t = getattr(cfg, "tracking", None)
        return cls(t.experiment, t.run_name, tuple(t.tags)) if t is not None else cls()

    def tag_dict(self) -> Dict[str, str]:
        return dict((t.split("=", 1) + [""])[:2] for t in self.tags)


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

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None, settings: TrackerSettings = TrackerSettings()):
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard has no variable of its own; MADBENCH_TENSORBOARD_DIR/<run name> lets several runs share one
        # `tensorboard --logdir`, else RUN/tensorboard
        shared = os.environ.get("MADBENCH_TENSORBOARD_DIR")
        folder = Path(shared) / (settings.run_name or name) if shared else Path(run_dir) / "tensorboard"
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
    """An MLflow run (the parent) with one child run per chain: params from the config, metrics per step, the report.

    Where: ``MLFLOW_TRACKING_URI`` when set (a server, a database, a folder; ``mlflow.set_tracking_uri`` sets it
    too), else the file store RUN/mlruns. Experiment: ``tracking.experiment``, else ``MLFLOW_EXPERIMENT_NAME``,
    else "madbench"; run name: ``tracking.run_name``, else the run's; tags: ``tracking.tags``. The parent logs
    ``<chain id>/<metric>``; each child (tag ``madbench.chain``) logs its chain's ``<metric>`` unprefixed.

    Through an ``MlflowClient`` of its own: the caller's tracking URI and active run (a notebook's) are untouched."""

    BATCH = 100  # MLflow's limit on params per log_batch call

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None, settings: TrackerSettings = TrackerSettings()):
        from mlflow.tracking import MlflowClient

        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a file store without it
        # MLflow's own settings first: MLFLOW_TRACKING_URI (a server, a database, a folder), else RUN/mlruns
        uri = os.environ.get("MLFLOW_TRACKING_URI") or (Path(run_dir) / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        self.tracking_uri = uri
        self.experiment = settings.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "madbench"
        self.children: Dict[str, str] = {}  # chain id -> child run id (nested under this run)
        self.resumed = False
        if run_id:
            try:
                self.client.get_run(run_id)
                self.client.update_run(run_id, status="RUNNING")
                self.resumed = True
            except Exception:  # the store was deleted or moved: a new run gets everything
                run_id = None
        if not run_id:
            experiment = self.client.get_experiment_by_name(self.experiment)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.experiment)
            tags = {**settings.tag_dict(), "madbench.run": name}
            run_id = self.client.create_run(experiment_id, run_name=settings.run_name or name, tags=tags).info.run_id
        else:  # a resume: the chains' child runs of the earlier process
            for child in self.client.search_runs([self.client.get_run(run_id).info.experiment_id],
                                                 filter_string=f"tags.mlflow.parentRunId = '{run_id}'"):
                self.children[child.data.tags.get("madbench.chain", "")] = child.info.run_id
        self.run_id = run_id
        self.experiment_id = self.client.get_run(run_id).info.experiment_id

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

    def log_chain(self, chain_id: str, metrics: Dict[str, float], step: int) -> None:
        """A chain's metrics, unprefixed, in its own child run (nested under the run's: MLflow's parent/child)."""
        import time

        from mlflow.entities import Metric

        if chain_id not in self.children:
            parent = self.client.get_run(self.run_id)  # the user's tags (tracking.tags) carry over to each chain
            tags = {k: v for k, v in parent.data.tags.items() if not k.startswith(("mlflow.", "madbench."))}
            tags.update({"mlflow.parentRunId": self.run_id, "madbench.chain": chain_id})
            self.children[chain_id] = self.client.create_run(self.experiment_id, run_name=chain_id, tags=tags).info.run_id
        else:
            self.client.update_run(self.children[chain_id], status="RUNNING")
        now = int(time.time() * 1000)
        rows = [Metric(_mlflow_key(k), v, now, step) for k, v in metrics.items()]
        for i in range(0, len(rows), 1000):
            self.client.log_batch(self.children[chain_id], metrics=rows[i:i + 1000])

    def log_artifacts(self, folder):
        self.client.log_artifacts(self.run_id, str(folder), artifact_path="report")

    def abort(self):
        self._end("KILLED")

    def close(self):
        self._end("FINISHED")

    def _end(self, status: str) -> None:
        for child in self.children.values():
            self.client.set_terminated(child, status=status)
        self.client.set_terminated(self.run_id, status=status)


class WandbTracker:
    """A wandb run in RUN/wandb, offline by default; ``generation`` is the step metric of every chain's curves.

    A run of its own (``reinit="create_new"``): a notebook's active wandb run is neither finished nor written to."""

    def __init__(self, run_dir: Path, name: str, run_id: Optional[str] = None, settings: TrackerSettings = TrackerSettings()):
        import wandb

        self.wandb = wandb
        # wandb's own settings: WANDB_DIR (else RUN), WANDB_PROJECT, WANDB_RUN_GROUP (else the run's name: the runs of
        # one experiment group together), WANDB_MODE (else offline), WANDB_ENTITY/WANDB_TAGS read by wandb itself
        folder = Path(os.environ.get("WANDB_DIR") or run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if run_id and not any((folder / "wandb").glob(f"*-{run_id}")):
            run_id = None  # the earlier run's folder is gone: a new run gets everything
        resume = {"id": run_id, "resume": "allow"} if run_id else {}
        tags = list(settings.tags) or None
        self.run = wandb.init(project=settings.experiment or os.environ.get("WANDB_PROJECT") or "madbench",
                              name=settings.run_name or os.environ.get("WANDB_NAME") or name, dir=str(folder),
                              group=os.environ.get("WANDB_RUN_GROUP") or name, tags=tags,
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
