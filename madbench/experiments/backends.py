"""Where sweep jobs run: local processes, a Ray cluster, or Slurm job arrays (submitit).

    madbench sweep --config sweeps/default.yaml                    # local processes
    madbench sweep --config sweeps/default.yaml --backend ray      # ray.init(address=$RAY_ADDRESS or --address)
    madbench sweep --config sweeps/default.yaml --backend slurm    # one submitit job array per phase

A job is a plain dict (picklable, JSON-able): generation 0 of one seed, or one
chain, of one run folder. :func:`run_job` executes it in whatever process the
backend gives it and never raises: a failure comes back as
``{"status": "failed", "error": one line, "traceback": file}`` so one broken
chain never stops the others. Every backend calls ``on_result`` once per job.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from madbench.errors import MadbenchError
from madbench.registry import Registry, did_you_mean

SWEEP_BACKENDS = Registry("sweep backend")  # name -> fn(phases, opts, on_result, skip); registered below
BACKENDS = SWEEP_BACKENDS  # the older name: iterating gives the names
# Environment a job needs wherever it lands (a Ray worker or a Slurm node may not inherit the driver's).
PASS_ENV = ("MADBENCH_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
            "TOKENIZERS_PARALLELISM", "PYTHONHASHSEED")


def job_env() -> Dict[str, str]:
    return {k: os.environ[k] for k in PASS_ENV if k in os.environ}


def _set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


@contextlib.contextmanager
def _model_cache_lock():
    import fcntl

    from madbench.models.base_model import cache_dir

    path = cache_dir() / ".model-build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_job(job: dict) -> dict:
    """Run one job (``kind`` 'gen0' or 'chain') in this process; return its status dict."""
    for key, value in (job.get("env") or {}).items():
        os.environ.setdefault(key, value)
    start = time.time()
    out = {"id": job["id"], "kind": job["kind"], "started": round(start, 3), "host": os.uname().nodename}
    try:
        _set_threads(int(job.get("threads") or 1))
        from madbench.config.run_config import from_dict
        from madbench.results.environment import environment
        from madbench.loop.runner import Chain, Runner
        from madbench.plugins import load_all

        load_all(job.get("plugins") or [])  # installed entry points and the sweep's --plugin specs
        cfg = from_dict(job["config"])
        prefix = f"[{job['id']}] "
        with _model_cache_lock():  # parallel jobs must not build/convert the same cached model at once
            runner = Runner(cfg, Path(job["run_dir"]), log=lambda line: print(prefix + line, flush=True))
        chains = [Chain(c["regime"], c["mode"], int(c["seed"]), tuple(c["mitigations"])) for c in job["chains"]]
        if job["kind"] == "gen0":
            runner.ensure_gen0(int(job["seed"]))
            for chain in chains:  # one chain per mitigation set: fills the shared generation-0 sample cache
                runner.run_generation(chain, 0)
        else:
            runner.run(chains)
        from madbench.models.base_model import load_warnings

        out.update(status="done", environment={**environment(), "model_path": runner.model_path,
                                               "model_warnings": load_warnings(runner.model_path, cfg)})
    except BaseException as exc:  # noqa: BLE001  (a job reports, it never takes the sweep down)
        errors = Path(job["sweep_dir"]) / "errors"
        errors.mkdir(parents=True, exist_ok=True)
        path = errors / f"{job['id'].replace('/', '__')}.txt"
        path.write_text(traceback.format_exc(), encoding="utf-8")
        line = " ".join(f"{type(exc).__name__}: {exc}".split())
        out.update(status="failed", error=line[:300], traceback=str(path))
        if isinstance(exc, KeyboardInterrupt):
            raise
    out["seconds"] = round(time.time() - start, 2)
    return out


def _failed(job: dict, why: str) -> dict:
    return {"id": job["id"], "kind": job["kind"], "status": "failed", "error": " ".join(why.split())[:300]}


def _phases(phases: List[List[dict]], on_result, skip) -> Iterator[List[dict]]:
    """Yield each phase's runnable jobs once the previous phase is finished; report skipped ones."""
    for jobs in phases:
        runnable = []
        for job in jobs:
            why = skip(job) if skip else None
            if why:
                on_result(_failed(job, why))
            else:
                runnable.append(job)
        if runnable:
            yield runnable


# ---------------------------------------------------------------------- local
def die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent dies (kill -9 included), so a
    worker never outlives the sweep that owns it; elsewhere a no-op."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def _init_worker(threads: int, env: dict, counter, gpus: List[str], parent_pid: int = 0, sweep_dir: str = "") -> None:
    if parent_pid:
        die_with_parent(parent_pid)
    if sweep_dir:
        from madbench.results.lock import hold_workers_lock

        hold_workers_lock(Path(sweep_dir))  # a re-run of the sweep refuses while this worker lives
    os.environ.update(env)
    if gpus:  # one GPU per worker process, before torch sees CUDA
        with counter.get_lock():
            index, counter.value = counter.value, counter.value + 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    _set_threads(threads)


def _gpu_ids(opts: dict) -> List[str]:
    if opts.get("gpus") is not None:
        return [g.strip() for g in str(opts["gpus"]).split(",") if g.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@SWEEP_BACKENDS.register("local")
def run_local(phases: List[List[dict]], opts: dict, on_result, skip) -> None:
    """Parallel worker processes sized to the machine: workers x threads <= cores."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from madbench.models.threads import available_cores

    cores = available_cores()  # affinity and cgroup quota, not the machine's count
    gpus = _gpu_ids(opts)
    threads = int(opts.get("threads") or 0)
    default = len(gpus) if gpus else cores // max(1, threads) or 1  # a process per GPU, or per core
    workers = int(opts.get("workers") or 0) or max(1, min(max(map(len, phases)), default))
    threads = threads or max(1, cores // workers)
    print(f"madbench sweep: local backend, {workers} worker process(es) x {threads} torch thread(s)"
          + (f", GPUs {','.join(gpus)} (one per worker)" if gpus else ""), flush=True)
    from madbench.models.threads import load_per_core

    load = load_per_core()
    if load is not None and load > 0.75 and not gpus:  # others already use the cores: each worker gets less than a share
        print(f"madbench sweep: warning: the machine is loaded (1-min load {load:.2f} per available core, {cores} core(s));"
              " timings will be slower than on a quiet machine", flush=True)
    ctx = multiprocessing.get_context("spawn")  # no torch/CUDA state inherited through fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, job_env(), ctx.Value("i", 0), gpus, os.getpid(),
                                       opts.get("sweep_dir") or "")) as pool:
        for jobs in _phases(phases, on_result, skip):
            futures = {pool.submit(run_job, {**job, "threads": threads}): job for job in jobs}
            for fut in as_completed(futures):
                try:
                    on_result(fut.result())
                except Exception as exc:  # BrokenProcessPool: a worker died (OOM kill, segfault)
                    on_result(_failed(futures[fut], f"worker process died: {type(exc).__name__}: {exc}"))


# ---------------------------------------------------------------------- ray
@SWEEP_BACKENDS.register("ray")
def run_ray(phases: List[List[dict]], opts: dict, on_result, skip) -> None:
    """One Ray task per job on a running cluster (or a local instance when no address is given)."""
    try:
        import ray
    except ImportError:
        raise MadbenchError("the ray backend needs ray: pip install 'madbench[cluster]' (or pip install ray)")
    started = False
    if not ray.is_initialized():
        address = opts.get("address") or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 runtime_env={"env_vars": job_env()})
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        threads = int(opts.get("threads") or 0) or max(1, min(8, cpus // max(1, max(map(len, phases)))))
        gpus = float(opts["gpus_per_job"]) if opts.get("gpus_per_job") is not None else (1.0 if has_gpu else 0.0)
        print(f"madbench sweep: ray backend, {cpus} CPUs in the cluster, {threads} per job, {gpus} GPU per job", flush=True)
        task = ray.remote(run_job).options(num_cpus=threads, num_gpus=gpus, max_retries=0)
        for jobs in _phases(phases, on_result, skip):
            pending = {task.remote({**job, "threads": threads}): job for job in jobs}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                try:
                    on_result(ray.get(done[0]))
                except Exception as exc:  # the worker process died
                    on_result(_failed(job, f"ray task died: {type(exc).__name__}: {exc}"))
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------- slurm
@SWEEP_BACKENDS.register("slurm")
def run_slurm(phases: List[List[dict]], opts: dict, on_result, skip) -> None:
    """One submitit job array; ``cluster: local`` runs the same array as local processes (tests)."""
    try:
        import submitit
    except ImportError:
        raise MadbenchError("the slurm backend needs submitit: pip install 'madbench[cluster]' (or pip install submitit)")
    folder = Path(opts["sweep_dir"]) / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=opts.get("cluster") or None)
    local = executor.cluster != "slurm"  # 'local'/'debug': the array runs as processes of this machine
    from madbench.models.threads import available_cores

    cores = available_cores() if local else 4
    threads = int(opts.get("threads") or 0) or (max(1, cores // min(cores, max(map(len, phases)))) if local else 4)
    params = {"timeout_min": int(opts.get("timeout_min") or 24 * 60), "cpus_per_task": threads,
              "gpus_per_node": int(opts.get("gpus_per_job") or 0), "name": "madbench-sweep"}
    if executor.cluster == "slurm":
        params["slurm_array_parallelism"] = int(opts.get("array_parallelism") or 64)
        params.update({k if k.startswith("slurm_") else f"slurm_{k}": v for k, v in (opts.get("slurm") or {}).items()})
    executor.update_parameters(**params)
    for jobs in _phases(phases, on_result, skip):
        submitted = executor.map_array(run_job, [{**job, "threads": threads} for job in jobs])
        print(f"madbench sweep: slurm backend (submitit cluster '{executor.cluster}'), job array {submitted[0].job_id.split('_')[0]} "
              f"({len(jobs)} jobs, {threads} CPUs each); logs in {folder.parent}", flush=True)
        pending = dict(zip(submitted, jobs))
        while pending:
            for sub in [s for s in pending if s.done()]:
                job = pending.pop(sub)
                try:
                    on_result(sub.result())
                except Exception as exc:  # the job was killed, timed out or could not start
                    on_result(_failed(job, f"slurm job {sub.job_id} failed: {type(exc).__name__}: {str(exc)[-200:]}"))
            if pending:
                time.sleep(0.5)


def run_jobs(backend: str, phases: List[List[dict]], opts: dict, on_result: Callable[[dict], None],
             skip: Optional[Callable[[dict], Optional[str]]] = None) -> None:
    """Run the phases one after the other on ``backend``; ``skip(job)`` may veto a job with a reason."""
    if backend not in SWEEP_BACKENDS:
        known = SWEEP_BACKENDS.registered()
        raise MadbenchError(f"unknown backend '{backend}';{did_you_mean(backend, known)} use one of {', '.join(known)}")
    phases = [list(p) for p in phases]
    if any(phases):
        SWEEP_BACKENDS.get(backend)(phases, opts, on_result, skip)
