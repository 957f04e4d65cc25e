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
chain is one curve. A tracker is a :class:`Tracker` class (the built-in ones: madbench/reporting/tracker_backends.py)
in the ``TRACKERS`` registry; a plug-in adds one with ``@TRACKERS.register("name", requires="pkg", install="pip install pkg")``
in a ``--plugin`` file, or an entry point in the ``madbench.trackers`` group (``requires``/``install``: optional
class attributes naming the package it needs and how to install it).

Resume: RUN/tracking/state.json (written atomically after each batch is flushed) records,
per tracker, its run id, whether the config and the report went out, and which (chain,
generation) it has logged. ``madbench run --resume`` continues the same MLflow and wandb
runs and logs only what is new, so each (chain, generation) is logged once per run. A
process killed between a flush and that write logs its last batch again on resume.
"""

from __future__ import annotations

import atexit
import importlib.util
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from madbench.results import fileio
from madbench.results.run_store import RunStore
from madbench.errors import MadbenchError
from madbench.registry import Registry, did_you_mean

from madbench.reporting.tracker_backends import (  # noqa: F401  (a tracker's protocol and the built-in ones)
    DiskTracker, MlflowTracker, TensorBoardTracker, Tracker, TrackerSettings, WandbTracker, _mlflow_key)

_OPEN: Dict[str, "GenerationLogger"] = {}  # run folder -> the logger this process holds open there


# name -> tracker class; ``requires``: the module it needs (None: nothing), ``install``: the command that adds it
TRACKERS = Registry("tracker")
TRACKERS.register("disk", requires=None, install="")(DiskTracker)
TRACKERS.register("tensorboard", requires="tensorboard",
                  install="pip install 'madbench[tensorboard]' (or: pip install tensorboard)")(TensorBoardTracker)
TRACKERS.register("mlflow", requires="mlflow", install="pip install 'madbench[mlflow]' (or: pip install mlflow-skinny)")(MlflowTracker)
TRACKERS.register("wandb", requires="wandb", install="pip install 'madbench[wandb]' (or: pip install wandb)")(WandbTracker)


def _install(name: str) -> str:
    return getattr(TRACKERS.get(name), "install", "") or f"install what the tracker '{name}' needs"


def check(names: Sequence[str]) -> List[str]:
    """Validate tracker names and that their packages are installed; one line otherwise."""
    names = [names] if isinstance(names, str) else list(names or ())
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip() and n.strip() != "none"]
    for name in names:
        if name not in TRACKERS:
            known = TRACKERS.registered()
            raise MadbenchError(f"unknown tracker '{name}' in report_to;{did_you_mean(name, known)} known: {', '.join(known)}")
        module = getattr(TRACKERS.get(name), "requires", None)
        if module and importlib.util.find_spec(module) is None:
            raise MadbenchError(f"report_to={name} needs the {module} package, which is not installed; run: {_install(name)}")
    return list(dict.fromkeys(names))  # `--report-to disk --report-to disk` is one tracker, not two


def previous(run_dir: Path) -> List[str]:
    """The trackers an earlier process of this run logged to (from RUN/tracking/state.json), for a resume."""
    return list(_read_state(Path(run_dir)))


def _read_state(run_dir: Path) -> Dict[str, dict]:
    path = RunStore(run_dir).tracking_state
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
                    tracker = _build(TRACKERS.get(name), self.run_dir, cfg, entry.get("run_id"))
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
                    raise MadbenchError(f"report_to={name} failed to start ({exc}); run: {_install(name)}")
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
                values = generation_values(gen)
                metrics = {f"{chain['id']}/{k}": v for k, v in values.items()}
                rows.append((chain["id"], int(gen["generation"]), metrics, values))
        changed = False
        for name, tracker in list(self.trackers.items()):
            logged = self.state[name]["logged"]
            todo = [row for row in rows if row[1] not in logged.get(row[0], [])]
            if not todo:
                continue
            try:
                for chain_id, generation, metrics, values in todo:
                    tracker.log_metrics(metrics, generation)
                    if hasattr(tracker, "log_chain"):  # a run per chain (MLflow child runs), unprefixed keys
                        tracker.log_chain(chain_id, values, generation)
                _flush(tracker)
            except Exception as exc:  # the results are saved; a failing tracker must not stop the training
                self.log(f"madbench: warning: report_to={name} stopped logging ({_first_line(exc)}); "
                         "the rest of this run is not sent to it (resume the run to send it)")
                self._close(name, abort=True)
                continue
            for chain_id, generation, _, _ in todo:
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
        fileio.write_json(RunStore(self.run_dir).tracking_state, {"version": 1, "trackers": self.state})

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


def generation_values(gen: dict) -> Dict[str, float]:
    """What one generation logs: its metrics, each metric's 95% interval (``METRIC.ci_low``, ``METRIC.ci_high``: a
    '/' would nest under the metric's own key, which MLflow's file store keeps as a file),
    the mitigations' numeric statistics (``mitigation/samples/NAME/STAT``), synthetic_fraction and the last train loss."""
    values = {**gen["metrics"], "synthetic_fraction": gen.get("synthetic_fraction"), "train_loss_last": gen.get("train_loss_last")}
    for metric, bounds in (gen.get("intervals") or {}).items():
        if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
            values[f"{metric}.ci_low"], values[f"{metric}.ci_high"] = bounds
    for stage, by_name in (gen.get("mitigations") or {}).items():
        for name, stats in (by_name or {}).items():
            for stat, v in (stats or {}).items() if isinstance(stats, dict) else ():
                values[f"mitigation/{stage}/{name}/{stat}"] = v
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _build(cls, run_dir: Path, cfg, run_id):
    """A tracker built as ``cls(run_dir, name, run_id=...)``, with ``settings=`` when its constructor takes them."""
    import inspect

    try:
        takes = "settings" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes = False
    extra = {"settings": TrackerSettings.from_config(cfg)} if takes else {}
    return cls(run_dir, cfg.name, run_id=run_id, **extra)


def _flush(tracker) -> None:
    flush = getattr(tracker, "flush", None)
    if flush is not None:
        flush()
