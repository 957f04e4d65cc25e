"""Run the recursive LoRA loop.

    madbench run                                   # the default experiment (SmolLM2 + KJV, 3 regimes)
    madbench run --preset smoke                    # tiny model, every regime, 2 generations (< 2 min)
    madbench run --config exp.yaml loop.generations=3 sampling.temperature=0.7
    madbench run --resume runs/default             # continue after a crash or Ctrl-C
    madbench run --dry-run                         # print the resolved config and the plan
    madbench run --preset shumailov2024            # a published protocol (madbench list presets, docs/protocols/)

Re-running with the same config and output folder resumes it; finished
generations are never recomputed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from . import io
from .config import RunConfig, build_config, from_dict, validate
from .errors import MadbenchError


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. loop.generations=3")
    p.add_argument("--preset", default="default", help="starting config (see: madbench list); default: %(default)s")
    p.add_argument("--config", help="YAML or JSON file with config values, applied over the preset")
    p.add_argument("--output-dir", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its saved config")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the plan, then exit")


def resolve(args) -> tuple[RunConfig, Path]:
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").is_file():
            raise MadbenchError(f"{run_dir} is not a madbench run folder (no config.json); give the folder a previous 'madbench run' wrote")
        if args.overrides or args.config:
            raise MadbenchError("--resume uses the run's saved config; drop the overrides and --config, or start a new --output-dir")
        cfg = from_dict(io.read_json(run_dir / "config.json")["config"])
        validate(cfg)
        return cfg, run_dir
    from .presets import PRESETS

    cfg = build_config(PRESETS.get(args.preset)(), args.config, args.overrides)
    run_dir = Path(args.output_dir or Path("runs") / cfg.name)
    saved = run_dir / "config.json"
    if saved.is_file():
        old = io.read_json(saved)
        if old.get("config_hash") != cfg.hash():
            raise MadbenchError(
                f"{run_dir} holds a run with a different config (hash {old.get('config_hash')} vs {cfg.hash()}); "
                f"use --resume {run_dir} to continue it, or pick another --output-dir"
            )
    return cfg, run_dir


def main(args) -> int:
    cfg, run_dir = resolve(args)
    _protocol(args, cfg, run_dir)
    from .loop import plan_chains

    chains = plan_chains(cfg)
    if args.dry_run:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip())
        print(f"# config hash {cfg.hash()}; output {run_dir}")
        print(f"# plan: generation 0 per seed {list(cfg.loop.seeds)}, then {cfg.loop.generations} generations x {len(chains)} chains:")
        for c in chains:
            done = sum((run_dir / "chains" / c.id / f"gen_{g:03d}" / "meta.json").is_file() for g in range(cfg.loop.generations + 1))
            print(f"#   {c.id}: {done}/{cfg.loop.generations + 1} generations done")
        return 0
    return execute(cfg, run_dir, chains)


def _protocol(args, cfg: RunConfig, run_dir: Path) -> None:
    """A published-protocol preset (madbench/protocols.py): print and record where this run departs from it."""
    from .protocols import check, describe

    info = None if args.resume else check(args.preset, cfg)
    if info is None:
        return
    line = describe(info)
    if line:
        print(f"madbench: note: {line}")
    if not args.dry_run:
        run_dir.mkdir(parents=True, exist_ok=True)
        io.write_json(run_dir / "protocol.json", info)


def execute(cfg: RunConfig, run_dir: Path, chains=None, log=print) -> int:
    from .environment import environment
    from .loop import Runner, plan_chains
    from .results import collect, write_results

    from accelerate import PartialState
    import torch

    if cfg.sampling.backend == "vllm":
        from .vllm_backend import check_available

        check_available()  # before any training: one line if vLLM or the GPU is missing
    chains = chains or plan_chains(cfg)
    is_main = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    log = log if is_main else (lambda *a, **k: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main and not (run_dir / "config.json").is_file():
        io.write_json(run_dir / "config.json", {"config": cfg.to_dict(), "config_hash": cfg.hash()})
    start = time.perf_counter()
    log(f"madbench: run '{cfg.name}' -> {run_dir} ({len(chains)} chains x {cfg.loop.generations + 1} generations)")
    runner = Runner(cfg, run_dir, log=log)
    env = {**environment(), "model_path": runner.model_path}
    runner.event(event="start", config_hash=cfg.hash())

    def publish():
        write_results(run_dir, collect(run_dir, cfg, chains, env, time.perf_counter() - start))

    runner.run(chains, on_generation=publish)
    if not is_main:
        return 0
    publish()
    runner.event(event="finish", seconds=round(time.perf_counter() - start, 2))
    try:
        from .report import write_report
    except ImportError:
        write_report = None
    if write_report:
        try:
            write_report(run_dir)
        except Exception as exc:  # results are saved; a plotting problem must not fail the run
            log(f"madbench: warning: report failed ({type(exc).__name__}: {exc}); retry with: madbench report {run_dir}")
    log(f"madbench: done in {time.perf_counter() - start:.0f}s; results in {run_dir / 'results.json'}")
    return 0
