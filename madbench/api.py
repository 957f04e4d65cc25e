"""The Python API: run an experiment and read its results from a notebook or another tool.

    import madbench
    results = madbench.run({"loop": {"generations": 1}}, preset="smoke", output_dir="runs/nb",
                           overrides=["loop.regimes=[fully_synthetic]"])
    df = results.to_dataframe()          # one row per chain x generation, a column per metric
    df.pivot_table(index="generation", columns="chain", values="perplexity")
    madbench.load_results("runs/nb")     # the same, from a finished (or running) run folder

``config`` is a dict of config values (over ``preset``), a YAML/JSON file path, or a
:class:`madbench.config.run_config.RunConfig`; ``overrides`` are the CLI's dotted ``key=value``
strings. Bad input raises :class:`madbench.errors.MadbenchError` with the CLI's line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from madbench.errors import MadbenchError


@dataclass(frozen=True)
class GenerationResult:
    generation: int
    metrics: Dict[str, Optional[float]]
    train_tokens: Optional[int]
    train_docs: Optional[int]
    synthetic_fraction: float  # share of synthetic documents in this generation's training mix
    num_samples: Optional[int]
    num_kept: Optional[int]
    seconds: float
    mitigations: Dict[str, Any]  # {'mix': {name: stats}, 'samples': {name: stats}}
    train_loss_last: Optional[float] = None
    intervals: Optional[Dict[str, List[float]]] = None  # metric -> 95% estimator interval [low, high] (None: older file)


@dataclass(frozen=True)
class ChainResult:
    id: str
    regime: str
    mode: str  # 'replace' or 'accumulate'
    seed: int
    mitigations: Tuple[str, ...]  # () is the unmitigated baseline
    complete: bool
    generations: Tuple[GenerationResult, ...]

    @property
    def label(self) -> str:
        """The mitigation set as loop.mitigations spells it: 'none' for the baseline (mitigations == ()), else 'a+b'."""
        return "+".join(self.mitigations) or "none"

    def metric(self, name: str) -> List[Optional[float]]:
        """The metric's value at each generation of this chain."""
        return [g.metrics.get(name) for g in self.generations]


@dataclass(frozen=True)
class Results:
    path: Path
    run_name: str
    config: Dict[str, Any]
    config_hash: str
    environment: Dict[str, Any]
    metrics_info: Dict[str, Dict[str, Any]]  # metric -> {'higher_is_better', 'needs', 'description'}
    chains: Tuple[ChainResult, ...]
    complete: bool
    wall_seconds: Optional[float]

    def chain(self, chain_id: str) -> ChainResult:
        for c in self.chains:
            if c.id == chain_id:
                return c
        from madbench.registry import did_you_mean

        raise MadbenchError(f"no chain '{chain_id}' in {self.path};{did_you_mean(chain_id, [c.id for c in self.chains])}")

    def rows(self) -> List[Dict[str, Any]]:
        """One dict per chain x generation: the chain's identity, the generation's numbers, then every metric and,
        where the metric has one, its 95% interval as ``METRIC.ci_low`` / ``METRIC.ci_high`` (as the trackers log it).
        ``mitigations`` is :attr:`ChainResult.label`: 'none' for the baseline, as in loop.mitigations."""
        out = []
        for c in self.chains:
            for g in c.generations:
                bounds = {f"{m}.{side}": v for m, (low, high) in (g.intervals or {}).items()
                          for side, v in (("ci_low", low), ("ci_high", high))}
                out.append({"chain": c.id, "regime": c.regime, "mode": c.mode, "seed": c.seed,
                            "mitigations": c.label, "generation": g.generation,
                            "synthetic_fraction": g.synthetic_fraction, "train_docs": g.train_docs,
                            "train_tokens": g.train_tokens, "num_samples": g.num_samples, "num_kept": g.num_kept,
                            "seconds": g.seconds, **g.metrics, **bounds})
        return out

    def to_dataframe(self):
        """A pandas DataFrame of :meth:`rows` (pandas is optional: one clear line when it is missing)."""
        try:
            import pandas as pd
        except ImportError:
            raise MadbenchError("Results.to_dataframe needs pandas; run: pip install pandas (or use Results.rows())")
        return pd.DataFrame(self.rows())


def _generation(data: dict) -> GenerationResult:
    names = {f.name for f in dataclasses.fields(GenerationResult)}
    values = {k: data.get(k) for k in names if k != "mitigations"}  # optional fields of an older file: None
    return GenerationResult(**values, mitigations=data.get("mitigations", {}))


def load_results(run_dir: Union[str, Path]) -> Results:
    """Read (and schema-check) a run folder's results.json into typed results."""
    from madbench.results.collect import load_results as load_json

    path = Path(run_dir)
    data = load_json(path)
    chains = tuple(ChainResult(id=c["id"], regime=c["regime"], mode=c["mode"], seed=c["seed"],
                               mitigations=tuple(c["mitigations"]), complete=c["complete"],
                               generations=tuple(_generation(g) for g in c["generations"])) for c in data["chains"])
    return Results(path=path if path.is_dir() else path.parent, run_name=data.get("run_name") or str(data["config"].get("name", "")), config=data["config"],
                   config_hash=data["config_hash"], environment=data["environment"],
                   metrics_info=data.get("metrics_info", {}), chains=chains, complete=data["complete"],
                   wall_seconds=data.get("wall_seconds"))


def _names_itself(cfg, preset: str, overrides) -> bool:
    """Whether the run has a name of its own: a name= override, or a name that is no preset's (a RunConfig built
    from another preset keeps that preset's name)."""
    from madbench.config.presets import PRESETS

    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    if any(str(o).split("=", 1)[0].strip() == "name" for o in overrides):
        return True
    return cfg.name not in {preset, *PRESETS.names()}


def build(config: Any = None, overrides: Iterable[str] = (), preset: str = "default", plugins: Sequence[str] = ()):
    """The RunConfig the arguments describe, validated (plug-ins loaded first)."""
    from madbench.config.run_config import RunConfig, build_config, merge
    from madbench.plugins import load_all
    from madbench.config.presets import PRESETS

    load_all(plugins)
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    if isinstance(config, RunConfig):
        return build_config(config.to_dict(), None, overrides)
    if config is None or isinstance(config, dict):
        values = dict(config or {})
        if "plugins" in values:
            from madbench.config.run_config import _plugin_list

            load_all(_plugin_list(values.pop("plugins")))
        return build_config(merge(PRESETS.get(preset)(), values), None, overrides)
    if isinstance(config, (str, Path)):
        return build_config(PRESETS.get(preset)(), str(config), overrides)
    raise MadbenchError(f"madbench.run: config must be a dict, a YAML/JSON path or a RunConfig, got {type(config).__name__}")


def run(config: Any = None, output_dir: Union[str, Path, None] = None, overrides: Iterable[str] = (),
        preset: str = "default", plugins: Sequence[str] = (), report_to: Sequence[str] = (), log=print) -> Results:
    """Run (or resume, or grow by mitigation sets: madbench/run_folder.py) an experiment in ``output_dir`` (default runs/<name>) and return its results.

    Without a ``name`` of its own (its preset's) the run is named after ``output_dir`` (``runs/notebook`` -> "notebook");
    a folder made earlier keeps the name it was made with. Third-party progress bars stay off."""
    from madbench.quiet import quiet_libraries
    from madbench.results import fileio
    from madbench.run import execute
    from madbench.reporting.trackers import check

    quiet_libraries(always=True)
    cfg = build(config, overrides, preset, plugins)
    report_to = check(report_to)
    run_dir = Path(output_dir or Path("runs") / cfg.name)
    from madbench.results.run_store import RunStore

    saved = RunStore(run_dir).config
    if output_dir is not None and not _names_itself(cfg, preset, overrides):
        import dataclasses

        earlier = fileio.read_json(saved).get("config", {}).get("name") if saved.is_file() else None
        cfg = dataclasses.replace(cfg, name=earlier or run_dir.resolve().name)
    if saved.is_file() and fileio.read_json(saved).get("config_hash") != cfg.hash():
        from madbench.run_folder import added_chains

        if added_chains(fileio.read_json(saved).get("config") or {}, cfg) is None:  # more seeds or sets: it grows
            raise MadbenchError(f"{run_dir} holds a run with a different config; pick another output_dir")
    execute(cfg, run_dir, log=log, report_to=report_to)
    return load_results(run_dir)
