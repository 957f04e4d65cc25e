"""Experiment trackers: the config once, every generation's metrics (step = generation), the plots at the end.

    madbench run --preset smoke --report-to tensorboard        # RUN/tensorboard (tensorboard --logdir RUN)
    madbench run --preset smoke --report-to mlflow,wandb       # RUN/mlruns (file store), RUN/wandb (offline)
    madbench.run(cfg, output_dir="runs/x", report_to=["disk"]) # RUN/tracking/*.json(l), no extra package

None by default. Only the main process logs. ``disk`` needs nothing; the others are
optional extras (``pip install 'madbench[tensorboard]'``, ``[mlflow]``, ``[wandb]``); a
missing package is one line with the install command, before any training. wandb runs
offline unless ``WANDB_MODE`` says otherwise (sync later with ``wandb sync RUN/wandb``).

A chain's metrics are logged as ``<chain id>/<metric>`` at step = generation, so every
chain is one curve. A tracker is a :class:`Tracker`; register your own in ``TRACKERS``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Protocol, Sequence

from . import io
from .errors import MadbenchError
from .registry import did_you_mean


class Tracker(Protocol):
    def log_config(self, config: dict) -> None: ...
    def log_metrics(self, metrics: Dict[str, float], step: int) -> None: ...
    def log_artifacts(self, folder: Path) -> None: ...  # the run's report folder (plots, report.md/html)
    def close(self) -> None: ...


class DiskTracker:
    """RUN/tracking/config.json, metrics.jsonl ({step, metrics} per generation) and artifacts.json."""

    def __init__(self, run_dir: Path, name: str):
        self.dir = Path(run_dir) / "tracking"
        self.dir.mkdir(parents=True, exist_ok=True)

    def log_config(self, config):
        io.write_json(self.dir / "config.json", config)

    def log_metrics(self, metrics, step):
        io.append_jsonl(self.dir / "metrics.jsonl", {"step": step, "metrics": metrics})

    def log_artifacts(self, folder):
        io.write_json(self.dir / "artifacts.json", sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()))

    def close(self):
        pass


class TensorBoardTracker:
    """Event files in RUN/tensorboard: scalars per chain and metric, the config as text, the plots as images."""

    def __init__(self, run_dir: Path, name: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log_config(self, config):
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_metrics(self, metrics, step):
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def log_artifacts(self, folder):
        import matplotlib.image as mpimg

        for png in sorted(Path(folder).glob("*.png")):
            self.writer.add_image(f"report/{png.stem}", mpimg.imread(png)[..., :3], 0, dataformats="HWC")

    def close(self):
        self.writer.close()


class MlflowTracker:
    """An MLflow run in the file store RUN/mlruns: params from the config, metrics per step, the report as artifacts."""

    def __init__(self, run_dir: Path, name: str):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri((Path(run_dir) / "mlruns").resolve().as_uri())
        mlflow.set_experiment("madbench")
        self.run = mlflow.start_run(run_name=name)

    def log_config(self, config):
        flat = _flatten(config)
        self.mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        self.mlflow.log_dict(config, "config.json")

    def log_metrics(self, metrics, step):
        self.mlflow.log_metrics({_mlflow_key(k): v for k, v in metrics.items()}, step=step)

    def log_artifacts(self, folder):
        self.mlflow.log_artifacts(str(folder), artifact_path="report")

    def close(self):
        self.mlflow.end_run()


class WandbTracker:
    """A wandb run in RUN/wandb, offline by default; ``generation`` is the step metric of every chain's curves."""

    def __init__(self, run_dir: Path, name: str):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "madbench"), name=name, dir=str(run_dir),
                              mode=os.environ.get("WANDB_MODE", "offline"), reinit=True)
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

    def close(self):
        self.run.finish()


# name -> (class, module it needs or None, install command)
TRACKERS: Dict[str, tuple] = {
    "disk": (DiskTracker, None, ""),
    "tensorboard": (TensorBoardTracker, "tensorboard", "pip install 'madbench[tensorboard]' (or: pip install tensorboard)"),
    "mlflow": (MlflowTracker, "mlflow", "pip install 'madbench[mlflow]' (or: pip install mlflow)"),
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
    return names


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _mlflow_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)  # chain ids join mitigations with '+'


class GenerationLogger:
    """The run's callback: opens the trackers, logs each newly finished generation once, closes them."""

    def __init__(self, names: Sequence[str], run_dir: Path, cfg, log: Callable = print):
        self.trackers: List[Any] = []
        self.seen: set = set()
        self.log = log
        for name in check(names):
            try:
                self.trackers.append(TRACKERS[name][0](Path(run_dir), cfg.name))
            except ImportError as exc:
                raise MadbenchError(f"report_to={name} failed to start ({exc}); run: {TRACKERS[name][2]}")
        for t in self.trackers:
            t.log_config(cfg.to_dict())

    def on_results(self, results: dict) -> None:
        """Log every (chain, generation) of results.json not logged yet, with step = generation."""
        for chain in results["chains"]:
            for gen in chain["generations"]:
                key = (chain["id"], gen["generation"])
                if key in self.seen:
                    continue
                self.seen.add(key)
                values = {**gen["metrics"], "synthetic_fraction": gen.get("synthetic_fraction"),
                          "train_loss_last": gen.get("train_loss_last")}
                metrics = {f"{chain['id']}/{k}": float(v) for k, v in values.items() if isinstance(v, (int, float))}
                for t in self.trackers:
                    t.log_metrics(metrics, gen["generation"])

    def finish(self, report_dir: Path | None) -> None:
        for t in self.trackers:
            try:
                if report_dir is not None and Path(report_dir).is_dir():
                    t.log_artifacts(Path(report_dir))
            except Exception as exc:  # results are saved; a tracker's upload must not fail the run
                self.log(f"madbench: warning: {type(t).__name__} could not log the report ({type(exc).__name__}: {exc})")
            finally:
                t.close()
        self.trackers = []
