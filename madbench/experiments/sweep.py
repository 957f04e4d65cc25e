"""Run a grid of chains (models x regimes x mitigations x sampling x seeds) as independent jobs.

    madbench sweep --config sweeps/default.yaml --dry-run          # the plan, nothing runs
    madbench sweep --config sweeps/default.yaml                    # local processes sized to the machine
    madbench sweep --config sweeps/default.yaml --backend ray --address ray://head:10001
    madbench sweep --config sweeps/default.yaml --backend slurm    # submitit job arrays

SWEEP.yaml holds a run config (``preset:`` plus the same keys as ``madbench run --config``),
a ``grid:`` of dotted keys with value lists, and optional backend settings under ``sweep:``.
Grid values of ``loop.regimes``, ``loop.seeds`` and ``loop.mitigations`` become chains of one
run folder; every other axis (``sampling.temperature``, ``model.name``...) makes a variant with
its own run folder. Sweep folder::

    SWEEP/sweep.json             manifest: spec, variants, every job's status and error
    SWEEP/events.jsonl           one line per job started / finished / failed
    SWEEP/runs/<variant>/        a normal run folder (``madbench run --resume`` works on it)
    SWEEP/errors/<job>.txt       the traceback of a failed job
    SWEEP/sweep_summary.json|md  last generation: mean +- 95% CI per group, comparisons

Generation 0 of every (variant, seed) runs first, once, then the chains in parallel.
Re-running the same command skips finished chains and resumes unfinished ones.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import sys
import time
from pathlib import Path
from typing import Dict, List

import yaml

from madbench.results import fileio
from madbench.experiments.backends import BACKENDS, job_env, run_jobs
from madbench.config.run_config import RunConfig, build_config, config_hash, load_file, parse_override
from madbench.loop.regimes import regime
from madbench.errors import MadbenchError

CHAIN_AXES = ("loop.regimes", "loop.seeds", "loop.mitigations")  # one run folder holds all of these
RESERVED = ("preset", "grid", "sweep")


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides applied to every variant")
    p.add_argument("--config", required=True, help="SWEEP.yaml: preset, config values, grid: {dotted.key: [values]}, sweep: {backend options}")
    p.add_argument("--backend", choices=BACKENDS, help="where jobs run (default: sweep.backend in the file, else local)")
    p.add_argument("--output-dir", help="sweep folder (default: runs/sweeps/<name>)")
    p.add_argument("--workers", type=int, help="local: parallel worker processes (default: one per core, at most one per job)")
    p.add_argument("--threads", type=int, help="torch threads per job (default local: cores // workers)")
    p.add_argument("--gpus", help="local: comma-separated GPU ids, one per worker (default: all visible GPUs)")
    p.add_argument("--address", help="ray: cluster address (default: $RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--cluster", help="slurm: submitit cluster ('slurm', or 'local' to run the job arrays as local processes)")
    p.add_argument("--dry-run", action="store_true", help="print the variants, chains and jobs still to run, then exit")


# ---------------------------------------------------------------------- planning
def load_spec(path: str) -> dict:
    spec = load_file(path)
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise MadbenchError(f"{path}: 'grid' must map dotted keys to value lists, e.g. sampling.temperature: [0.7, 1.0]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise MadbenchError(f"{path}: grid axis '{key}' must be a non-empty list of values, got {values!r}")
    if not isinstance(spec.get("sweep") or {}, dict):
        raise MadbenchError(f"{path}: 'sweep' must be a mapping of backend options (backend, workers, threads, ...)")
    spec.setdefault("name", Path(path).stem)
    from madbench.config.limits import check_name

    check_name(str(spec["name"]), "sweep name")  # it becomes the sweep folder's name
    return spec


def _nested(key: str, value) -> dict:
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _slug(axes: Dict[str, object]) -> str:
    if not axes:
        return "base"
    text = ",".join(f"{k}={v}" for k, v in axes.items())
    text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text)).strip("_")  # never '..' in a folder name
    return text if len(text) <= 80 else text[:68] + "-" + config_hash(axes)[:8]


def identity(cfg: RunConfig) -> str:
    """The config hash without the chain axes: a run folder can gain seeds, regimes or mitigations."""
    data = cfg.to_dict()
    data["loop"] = {k: v for k, v in data["loop"].items() if k not in ("regimes", "seeds", "mitigations")}
    return config_hash(data)


def plan(spec: dict, overrides=()) -> List[dict]:
    """Variants: [{"id", "axes", "config" (RunConfig), "chains"}], one per combination of non-chain axes."""
    from madbench.loop.runner import plan_chains
    from madbench.config.presets import PRESETS

    base = {k: v for k, v in spec.items() if k not in RESERVED}
    grid = spec.get("grid") or {}
    chain_axes = {k: v for k, v in grid.items() if k in CHAIN_AXES}
    other = {k: v for k, v in grid.items() if k not in CHAIN_AXES}
    preset = PRESETS.get(spec.get("preset") or "default")()
    from madbench.config.limits import check_variants as check_count

    check_count(math.prod(len(v) if isinstance(v, (list, tuple)) else 1 for v in other.values()))  # before building any
    variants, seen = [], set()
    for combo in itertools.product(*other.values()):
        axes = dict(zip(other, combo))
        extra = [f"{k}={yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()}" for k, v in chain_axes.items()]
        data = dict(preset)
        from madbench.config.run_config import merge

        data = merge(data, base)
        for key, value in axes.items():
            data = merge(data, _nested(key, value))
        cfg = build_config(data, None, [*extra, *overrides])
        slug = _slug(axes)
        if slug in seen:
            raise MadbenchError(f"grid values {axes} repeat another variant; make every grid value distinct")
        seen.add(slug)
        if axes:
            import dataclasses

            cfg = dataclasses.replace(cfg, name=f"{cfg.name}.{slug}")
        variants.append({"id": slug, "axes": axes, "config": cfg, "chains": plan_chains(cfg), "preset": spec.get("preset") or "default"})
    return variants


def check_variants(variants: List[dict]) -> None:
    """The pre-flight check of every variant (dry run or not), before any job starts: one line naming the variant."""
    from madbench.config.preflight import preflight

    for v in variants:
        try:
            preflight(v["config"])
        except MadbenchError as exc:
            raise MadbenchError(f"variant '{v['id']}': {exc}" if len(variants) > 1 or v["axes"] else str(exc)) from None


def _chain_done(run_dir: Path, cfg: RunConfig, chain) -> int:
    from madbench.results.run_store import RunStore

    return RunStore(run_dir).finished_generations(chain.id, cfg.loop.generations)  # lists the folder: no stat per planned generation


def make_jobs(variants: List[dict], sweep_dir: Path) -> tuple[List[dict], List[dict], List[dict]]:
    """(gen0 jobs, chain jobs, finished chain ids): only what is missing on disk."""
    from madbench.plugins import loaded_specs

    from madbench.results.run_store import RunStore

    gen0_jobs, chain_jobs, finished = [], [], []
    env = job_env()
    for v in variants:
        cfg, run_dir = v["config"], sweep_dir / "runs" / v["id"]
        store = RunStore(run_dir)
        common = {"sweep_dir": str(sweep_dir), "run_dir": str(run_dir), "config": cfg.to_dict(), "env": env, "variant": v["id"]}
        common["plugins"] = loaded_specs()  # --plugin files/modules, loaded again in every worker
        todo = []
        for chain in v["chains"]:
            if _chain_done(run_dir, cfg, chain) == cfg.loop.generations + 1:
                finished.append(f"{v['id']}/{chain.id}")
            else:
                todo.append(chain)
        for seed in sorted({c.seed for c in todo}):
            firsts, msets = [], set()
            for c in todo:  # one chain per mitigation set fills the shared generation-0 sample cache
                if c.seed == seed and c.mitigations not in msets and not store.generation_done(c.id, 0):
                    msets.add(c.mitigations)
                    firsts.append(c)
            if firsts or not store.gen0_done(seed):
                gen0_jobs.append({**common, "id": f"{v['id']}/gen0-s{seed}", "kind": "gen0", "seed": seed,
                                  "chains": [_chain_dict(c) for c in firsts]})
        groups: Dict[str, list] = {}  # chains that learn from each other (an ecosystem's members): one job runs them all
        for c in todo:
            groups.setdefault(regime(c.regime).job(c), []).append(c)
        for key, members in groups.items():
            chain_jobs.append({**common, "id": f"{v['id']}/{key}", "kind": "chain", "seed": members[0].seed,
                               "chains": [_chain_dict(c) for c in members]})
    return gen0_jobs, chain_jobs, finished


def _chain_dict(chain) -> dict:
    return {"id": chain.id, "regime": chain.regime, "mode": chain.mode, "seed": chain.seed, "mitigations": list(chain.mitigations)}


def prepare_run_dirs(variants: List[dict], sweep_dir: Path) -> None:
    """Write each variant's config.json (and, for a published protocol's preset, where it departs from the protocol,
    as ``madbench run --preset`` records it); refuse a folder that holds a different experiment."""
    from madbench.config.protocols import check
    from madbench.results.run_store import RunStore

    for v in variants:
        cfg, run_dir = v["config"], sweep_dir / "runs" / v["id"]
        info = check(v.get("preset") or "default", cfg)
        if info is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            fileio.write_json(RunStore(run_dir).protocol, info)
        saved = run_dir / "config.json"
        if saved.is_file():
            from madbench.config.run_config import from_dict

            old = from_dict(fileio.read_json(saved)["config"])
            if identity(old) != identity(cfg):
                raise MadbenchError(
                    f"{run_dir} holds a run with a different config than variant '{v['id']}' of this sweep "
                    f"(only loop.regimes, loop.seeds and loop.mitigations may change between re-runs); "
                    f"use another --output-dir")
            if old.hash() == cfg.hash():
                continue
        fileio.write_json(saved, {"config": cfg.to_dict(), "config_hash": cfg.hash(), "sweep_variant": v["id"],
                              "sweep_axes": v["axes"]})


# ---------------------------------------------------------------------- command
def main(args) -> int:
    spec = load_spec(args.config)
    opts = dict(spec.get("sweep") or {})
    for key in ("backend", "workers", "threads", "gpus", "address", "cluster"):
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    backend = opts.get("backend") or "local"
    if backend not in BACKENDS:
        raise MadbenchError(f"sweep.backend '{backend}' is not one of {', '.join(BACKENDS)}")
    variants = plan(spec, args.overrides)
    check_variants(variants)
    sweep_dir = Path(args.output_dir or Path("runs") / "sweeps" / spec["name"]).resolve()
    gen0_jobs, chain_jobs, finished = make_jobs(variants, sweep_dir)
    if args.dry_run:
        return dry_run(spec, variants, sweep_dir, backend, gen0_jobs, chain_jobs, finished)
    from madbench.results.lock import folder_lock

    with contextlib.ExitStack() as stack:
        stack.enter_context(folder_lock(sweep_dir, "sweep"))  # one sweep per folder; dropped if this process dies
        _claim(variants, sweep_dir, stack)
        return _run(args, spec, opts, backend, variants, sweep_dir)


def _claim(variants: List[dict], sweep_dir: Path, stack: contextlib.ExitStack) -> None:
    """Under the sweep lock: no leftover worker, every run folder ours, no stale temp folder, no damage."""
    from madbench.results import integrity
    from madbench.results import lock

    lock.check_no_workers(sweep_dir)
    for v in variants:
        run_dir = sweep_dir / "runs" / v["id"]
        stack.enter_context(lock.folder_lock(run_dir, "run"))  # `madbench run --resume` on it is refused meanwhile
        fileio.remove_stale_temps(run_dir)
        integrity.verify(run_dir)


def _run(args, spec, opts, backend, variants, sweep_dir) -> int:
    gen0_jobs, chain_jobs, finished = make_jobs(variants, sweep_dir)  # again: the folders may have changed meanwhile
    prepare_run_dirs(variants, sweep_dir)
    from madbench.reporting.sweep_summary import gather

    manifest_path = sweep_dir / "sweep.json"
    manifest = fileio.read_json(manifest_path) if manifest_path.is_file() else {}
    jobs_state = {k: v for k, v in (manifest.get("jobs") or {}).items() if v.get("status") == "done"}
    environments = manifest.get("environments") or {}
    events = sweep_dir / "events.jsonl"

    def save(**extra):
        fileio.write_json(manifest_path, {
            "name": spec["name"], "spec_file": str(Path(args.config).resolve()), "spec": spec, "backend": backend,
            "overrides": list(args.overrides),
            "variants": [{"id": v["id"], "axes": v["axes"], "run_dir": f"runs/{v['id']}", "config_hash": v["config"].hash(),
                          "chains": [c.id for c in v["chains"]]} for v in variants],
            "jobs": jobs_state, "environments": environments, **extra})

    for job in gen0_jobs + chain_jobs:
        jobs_state[job["id"]] = {"kind": job["kind"], "variant": job["variant"], "status": "pending"}
    save()
    fileio.append_jsonl(events, {"time": round(time.time(), 3), "event": "sweep_start", "backend": backend,
                             "jobs": [j["id"] for j in gen0_jobs + chain_jobs], "finished": finished})
    print(f"madbench sweep: {len(variants)} variant(s), {len(finished)} chain(s) finished earlier, "
          f"{len(gen0_jobs)} generation-0 job(s) + {len(chain_jobs)} chain job(s) to run -> {sweep_dir}", flush=True)
    failed_gen0: Dict[tuple, str] = {}

    def on_result(res: dict) -> None:
        job_id = res["id"]
        state = jobs_state.setdefault(job_id, {})
        state.update({k: v for k, v in res.items() if k not in ("id", "environment")})
        if res.get("environment"):
            environments[job_id.split("/")[0]] = res["environment"]
        if res["status"] == "failed" and res["kind"] == "gen0":
            failed_gen0[(job_id.split("/")[0], int(job_id.rsplit("-s", 1)[1]))] = job_id
        fileio.append_jsonl(events, {"time": round(time.time(), 3), "event": f"job_{res['status']}", "job": job_id,
                                 "seconds": res.get("seconds"), "error": res.get("error")})
        save()
        if res["status"] == "done":
            print(f"madbench sweep: done   {job_id} ({res.get('seconds', 0):.0f}s)", flush=True)
        else:
            where = f" (traceback: {res['traceback']})" if res.get("traceback") else ""
            print(f"madbench sweep: FAILED {job_id}: {res.get('error')}{where}", file=sys.stderr, flush=True)

    def skip(job: dict):
        bad = failed_gen0.get((job["variant"], job["seed"])) if job["kind"] == "chain" else None
        return f"skipped: generation 0 job {bad} failed" if bad else None

    opts["sweep_dir"] = str(sweep_dir)
    start = time.time()
    run_jobs(backend, [gen0_jobs, chain_jobs], opts, on_result, skip)
    summary = gather(variants, sweep_dir, environments)
    failed = sorted(k for k, v in jobs_state.items() if v.get("status") == "failed")
    save(summary="sweep_summary.json", failed=failed, wall_seconds=round(time.time() - start, 2))
    fileio.append_jsonl(events, {"time": round(time.time(), 3), "event": "sweep_finish", "failed": failed})
    ran = len(gen0_jobs) + len(chain_jobs)
    print(f"madbench sweep: {ran - len(failed)} of {ran} job(s) done, {len(failed)} failed in {time.time() - start:.0f}s; "
          f"summary in {sweep_dir / 'sweep_summary.md'}" + (f" ({summary['groups']} groups)" if summary else ""), flush=True)
    for job_id in failed:
        print(f"madbench sweep: failed: {job_id}: {jobs_state[job_id].get('error')}", file=sys.stderr)
    return 1 if failed else 0


def dry_run(spec, variants, sweep_dir, backend, gen0_jobs, chain_jobs, finished) -> int:
    print(f"# sweep '{spec['name']}' -> {sweep_dir} (backend: {backend})")
    print(f"# grid: {yaml.safe_dump(spec.get('grid') or {}, default_flow_style=True, width=10**6, sort_keys=False).strip()}")
    for v in variants:
        cfg = v["config"]
        run_dir = sweep_dir / "runs" / v["id"]
        print(f"# variant {v['id']}: model {cfg.model.name}, config hash {cfg.hash()}, {cfg.loop.generations} generations, "
              f"{len(v['chains'])} chains -> {run_dir}")
        for c in v["chains"]:
            print(f"#   {c.id}: {_chain_done(run_dir, cfg, c)}/{cfg.loop.generations + 1} generations done")
    print(f"# jobs to run: {len(gen0_jobs)} generation-0 job(s) first, then {len(chain_jobs)} chain job(s); "
          f"{len(finished)} chain(s) already finished")
    for job in gen0_jobs + chain_jobs:
        print(f"#   {job['id']}")
    return 0
