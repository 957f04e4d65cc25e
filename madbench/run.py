"""Run the recursive LoRA loop.

    madbench run                                   # the default experiment (SmolLM2 + KJV, 3 regimes)
    madbench run --preset smoke                    # tiny model, every regime, 2 generations (< 2 min)
    madbench run --config exp.yaml loop.generations=3 sampling.temperature=0.7
    madbench run --resume runs/default             # continue after a crash or Ctrl-C
    madbench run --dry-run                         # print the resolved config and the plan
    madbench run --track tiny-fs 'loop.mitigations=[my_filter]'   # a leaderboard track's frozen protocol (madbench/config/tracks.py)
    madbench run --preset smoke --report-to tensorboard,disk  # also log to trackers (madbench/reporting/trackers.py)
    madbench run --resume runs/default --repair    # recompute damaged generations (see madbench/results/integrity.py)
    madbench run --preset shumailov2024            # a published protocol (madbench list presets, docs/protocols/)
    madbench run --resume runs/default --allow-processor-change   # continue on another kind of CPU (recorded)

Re-running with the same config and output folder resumes it; finished
generations are never recomputed. Re-running it with more mitigation sets (and
nothing else changed) extends it: only the new chains run.

    madbench run --track tiny-fs 'loop.mitigations=[[mix_real]]' --output-dir runs/tf
    madbench run --track tiny-fs 'loop.mitigations=[[mix_real],[dedup]]' --output-dir runs/tf   # adds dedup
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from madbench.results import fileio
from madbench.results import integrity
from madbench.results.run_store import RunStore
from madbench.config.run_config import RunConfig, build_config, from_dict
from madbench.config.validation import validate
from madbench.errors import MadbenchError
from madbench.run_folder import added_chains, computed_on, describe, extend


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. loop.generations=3")
    p.add_argument("--preset", default="default", help="starting config (see: madbench list); default: %(default)s")
    p.add_argument("--config", help="YAML or JSON file with config values, applied over the preset")
    p.add_argument("--output-dir", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its saved config")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the plan, then exit")
    p.add_argument("--load-plugins", action="store_true",
                   help="with --dry-run: import the plug-ins a config's plugins: or a --resume folder names (default: not imported)")
    p.add_argument("--track", metavar="NAME", help="run a leaderboard track: its frozen protocol, your loop.mitigations beside its baseline (see: madbench list tracks)")
    p.add_argument("--report-to", action="append", default=[], metavar="TRACKERS",
                   help="experiment trackers, comma-separated or repeated: disk, tensorboard, mlflow, wandb (default: none)")
    p.add_argument("--allow-processor-change", action="store_true",
                   help="resume on a machine whose processor kind or resolved dtype differs from the one the run started on "
                        "(default: refused; both are recorded in results.json's environment.computed_on)")
    p.add_argument("--repair", action="store_true",
                   help="move damaged finished generations (and those built on them) to RUN/damaged/ and recompute them")


def resolve(args) -> tuple[RunConfig, Path]:
    """The config and run folder; a real run refuses a folder that holds another config."""
    cfg, run_dir, differs = resolve_plan(args)
    if differs:
        raise MadbenchError(differs)
    return cfg, run_dir


def resolve_plan(args) -> tuple[RunConfig, Path, str]:
    """(config, run folder, why the folder holds another experiment or ''): reads, never writes."""
    if args.resume:
        run_dir = Path(args.resume)
        if not RunStore(run_dir).config.is_file():
            raise MadbenchError(f"{run_dir} is not a madbench run folder (no config.json); give the folder a previous 'madbench run' wrote")
        if args.overrides or args.config:
            raise MadbenchError("--resume uses the run's saved config; drop the overrides and --config, or start a new --output-dir")
        saved = _saved_config(run_dir)
        if saved.get("plugins"):  # the plug-ins the run was made with
            from madbench.plugins import changed_since, load_named

            for line in changed_since(saved.get("plugin_sha256", {})):
                print(f"madbench: warning: {line}", file=sys.stderr)
            load_named(saved["plugins"], f"run folder {run_dir}")
        cfg = from_dict(saved["config"])
        validate(cfg)
        return cfg, run_dir, ""
    from madbench.config.presets import PRESETS

    if getattr(args, "track", None):
        from madbench.config.tracks import resolve as resolve_track

        if args.preset != "default":
            raise MadbenchError("--track fixes the model and every setting but the mitigations; drop --preset")
        cfg = resolve_track(args.track, args.config, args.overrides)
    else:
        cfg = build_config(PRESETS.get(args.preset)(), args.config, args.overrides)
    run_dir = Path(args.output_dir or Path("runs") / cfg.name)
    if RunStore(run_dir).config.is_file():
        old = _saved_config(run_dir)
        if old.get("config_hash") != cfg.hash() and added_chains(old["config"], cfg) is None:
            return cfg, run_dir, (
                f"{run_dir} holds a run with a different config (hash {old.get('config_hash')} vs {cfg.hash()}); "
                f"use --resume {run_dir} to continue it, or pick another --output-dir")
    return cfg, run_dir, ""


def _saved_config(run_dir: Path) -> dict:
    """RUN/config.json, or one line naming it when it is damaged."""
    from madbench.results.integrity import try_read_json

    path = RunStore(run_dir).config
    data, why = try_read_json(path)
    if why or not isinstance(data.get("config"), dict):
        raise MadbenchError(f"{path} {why or 'has no config'}; this run folder cannot be resumed: "
                            f"start a new --output-dir (its finished generations stay readable)")
    return data


def finished_generations(run_dir: Path, chain_id: str, generations: int) -> int:
    """Finished generations of a chain, from a listing of its folder (a dry run never stats every planned path)."""
    return RunStore(run_dir).finished_generations(chain_id, generations)


def main(args) -> int:
    from madbench.loop.runner import plan_chains
    from madbench.config.preflight import preflight
    from madbench.reporting.trackers import check

    report_to = check(getattr(args, "report_to", []))  # a missing tracker package: one line, before any training
    if not args.dry_run:
        cfg, run_dir = resolve(args)
        if args.resume and not report_to:  # a resumed run continues the trackers it logged to (RUN/tracking/state.json)
            from madbench.reporting.trackers import previous

            report_to = check(previous(run_dir))
        preflight(cfg)  # every config error is one line here, before anything trains or is written
        _protocol(args, cfg, run_dir)
        return execute(cfg, run_dir, repair=getattr(args, "repair", False), report_to=report_to,
                       allow_processor_change=getattr(args, "allow_processor_change", False))
    from madbench.plugins import defer_named_plugins, deferred

    if not getattr(args, "load_plugins", False):
        defer_named_plugins()  # a dry run does not run a config's or a run folder's plug-in code unless asked
    try:
        cfg, run_dir, differs = resolve_plan(args)
    except MadbenchError as exc:
        if deferred():
            raise MadbenchError(f"{exc} (the named plug-ins were not imported: add --load-plugins)") from None
        raise
    facts = preflight(cfg)
    _protocol(args, cfg, run_dir)
    chains = plan_chains(cfg)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip())
    print(f"# config hash {cfg.hash()}; output {run_dir}")
    if differs:
        print(f"# note: {differs}; a run with this config there would be refused")
    elif RunStore(run_dir).config.is_file() and _saved_config(run_dir).get("config_hash") != cfg.hash():
        added = added_chains(_saved_config(run_dir)["config"], cfg)
        print(f"# note: {run_dir} holds this run with fewer chains; running extends it with {describe(added)} "
              "(its finished chains are kept)")
    fresh = f", fresh_data uses {facts['fresh_needed']}" if facts["fresh_needed"] else ""
    print(f"# pre-flight: ok (corpus: {facts['passages']} passages; held-out + generation 0 use {facts['held_out_and_gen0']}{fresh})")
    print(f"# plan: generation 0 per seed {list(cfg.loop.seeds)}, then {cfg.loop.generations} generations x {len(chains)} chains:")
    from madbench.loop.schedules import shares

    scheduled = shares(cfg.loop.synthetic_share, cfg.loop.generations)
    if scheduled is not None:
        print(f"# synthetic share of generations 1..{cfg.loop.generations} (mixing regimes): "
              + ", ".join(f"{s:.3g}" for s in scheduled))
    for c in chains:
        done = 0 if differs else finished_generations(run_dir, c.id, cfg.loop.generations)
        print(f"#   {c.id}: {done}/{cfg.loop.generations + 1} generations done" + (" (the folder holds another config)" if differs else ""))
    return 0


def _protocol(args, cfg: RunConfig, run_dir: Path) -> None:
    """A published-protocol preset (madbench/config/protocols.py): print and record where this run departs from it."""
    from madbench.config.protocols import check, describe

    info = None if args.resume else check(args.preset, cfg)
    if info is None:
        return
    line = describe(info)
    if line:
        print(f"madbench: note: {line}")
    if not args.dry_run:
        run_dir.mkdir(parents=True, exist_ok=True)
        fileio.write_json(RunStore(run_dir).protocol, info)


def execute(cfg: RunConfig, run_dir: Path, chains=None, log=print, repair: bool = False, report_to=(),
            allow_processor_change: bool = False) -> int:
    from madbench.loop.runner import plan_chains

    from accelerate import PartialState
    import torch

    from madbench.generation.backends import backend

    backend(cfg.sampling.backend).check_available()  # before any training: one line if vLLM or the GPU is missing
    chains = chains or plan_chains(cfg)
    is_main = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    log = log if is_main else (lambda *a, **k: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not is_main:
        return _execute(cfg, run_dir, chains, log, repair, is_main, report_to, allow_processor_change)
    with RunStore(run_dir).lock("run"):  # one writer per run folder; the kernel drops it if this process dies
        return _execute(cfg, run_dir, chains, log, repair, is_main, report_to, allow_processor_change)


def _already_done(store: RunStore, cfg: RunConfig, chains, is_main: bool):
    """The recorded environment when every chain is finished and the report exists (single process), else None.

    A no-op resume then costs the results rewrite, not a model load (seconds) and a plot redraw (tens of seconds).
    """
    from accelerate import PartialState

    if not is_main or PartialState().num_processes != 1 or not (store.report_dir / "report.html").is_file():
        return None
    if any(store.finished_generations(c.id, cfg.loop.generations) < cfg.loop.generations + 1 for c in chains):
        return None
    try:
        return fileio.read_json(store.results)["environment"]
    except (OSError, ValueError, KeyError):
        return None


def _execute(cfg: RunConfig, run_dir: Path, chains, log, repair: bool, is_main: bool, report_to=(),
             allow_processor_change: bool = False) -> int:
    from madbench.results.collect import ResultsWriter
    from madbench.results.environment import environment, numerics
    from madbench.loop.runner import Runner

    store = RunStore(run_dir)
    repaired = 0
    if is_main:
        removed = store.remove_stale_temps()  # partial folders of a killed or failed earlier attempt
        if removed:
            log(f"madbench: removed {removed} unfinished temporary folder(s) left by an earlier attempt")
        if repair:
            repaired = integrity.repair(store.root, log=log)
        integrity.verify(store.root)  # before loading anything: never build on a damaged generation
    if is_main and not store.config.is_file():
        from madbench.plugins import digests, loaded_specs, origins

        extra = {"plugins": loaded_specs(), "plugin_sha256": digests(), "plugin_origins": origins()} if origins() else {}
        fileio.write_json(store.config, {"config": cfg.to_dict(), "config_hash": cfg.hash(), **extra})
    elif is_main:
        extend(store, cfg, log)
    here = numerics(cfg)  # refused here, before trackers or models, when the finished generations came from another kind of CPU
    unfinished = any(store.finished_generations(c.id, cfg.loop.generations) <= cfg.loop.generations for c in chains)
    seen = computed_on(store, here, allow_processor_change or not unfinished) if is_main else [here]
    start = time.perf_counter()
    log(f"madbench: run '{cfg.name}' -> {run_dir} ({len(chains)} chains x {cfg.loop.generations + 1} generations)")
    # trackers (main process only): an interrupted run's are closed by their own exit hooks
    tracker = None
    if is_main and report_to:
        from madbench.reporting.trackers import GenerationLogger

        tracker = GenerationLogger(report_to, run_dir, cfg, log)
    # after a repair the loop runs: regimes rewrite their own files (an ecosystem's metrics) in after_generation
    done = None if repaired else _already_done(store, cfg, chains, is_main)
    if done is not None:  # a finished run resumed or re-run: record the segment, load no model, redraw no plots
        results = ResultsWriter(store, cfg, chains, done, tracker, started=start)
        results.write()
        store.append_event(event="finish", seconds=round(time.perf_counter() - start, 2))
        if tracker:
            tracker.finish(store.report_dir)
        log(f"madbench: every generation was already done ({time.perf_counter() - start:.1f}s); results in {store.results}")
        return 0
    runner = Runner(cfg, run_dir, log=log)
    from madbench.models.base_model import load_warnings

    env = {**environment(), "computed_on": seen, "model_path": runner.model_path,
           "model_warnings": load_warnings(runner.model_path, cfg)}  # trust_remote_code, pickle weights
    if cfg.eval.include_path:  # the user's lm-eval task folders: which YAMLs, by content
        from madbench.evaluation.lmeval import include_record

        env["lm_eval_include"] = include_record(cfg.eval.include_path)
    if is_main:
        store.append_event(event="start", config_hash=cfg.hash(), numerics=here)
    results = ResultsWriter(store, cfg, chains, env, tracker, started=start)
    try:
        monitor = []
        if cfg.monitor.rule and is_main:  # an alarm rule on each chain's panel (madbench/monitoring/callback.py)
            from madbench.monitoring.callback import MonitorCallback

            monitor = [MonitorCallback(cfg, run_dir, log)]
        runner.run(chains, callbacks=[results, *monitor])
    except BaseException as exc:
        if tracker:
            tracker.abort()  # closed now; a resume sends what it missed (RUN/tracking/state.json)
        if not isinstance(exc, Exception):
            raise
        from madbench.errors import disk_full_message, is_disk_full

        if is_disk_full(exc):  # the unfinished generation's temp folder is already gone (fileio.removed_on_error)
            raise MadbenchError(disk_full_message(exc, f"continue with: madbench run --resume {run_dir}"))
        raise
    if not is_main:
        return 0
    results.write()
    store.append_event(event="finish", seconds=round(time.perf_counter() - start, 2))
    try:
        from madbench.reporting.report import write_report
    except ImportError:
        write_report = None
    if write_report:
        try:
            write_report(run_dir)
        except Exception as exc:  # results are saved; a plotting problem must not fail the run
            log(f"madbench: warning: report failed ({type(exc).__name__}: {exc}); retry with: madbench report {run_dir}")
    if tracker:
        tracker.finish(store.report_dir)  # the plots, then close
    log(f"madbench: done in {time.perf_counter() - start:.0f}s; results in {store.results}")
    return 0
