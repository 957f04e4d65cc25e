"""Sweeps that lose their parent, or meet another sweep (issue 14, cases 4 and 5).

    .venv/bin/python -m pytest -q tests/test_faults_sweep.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

import pytest
from conftest import ROOT, cli, one_line_error

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes


def spec_file(path: Path) -> Path:
    spec = {"preset": "smoke", "name": "orphan-test", "loop": {"generations": 40},  # long enough to be killed mid-way
            "data": {"train_docs": 8, "eval_docs": 8}, "sampling": {"num_samples": 8, "max_new_tokens": 16, "batch_size": 8},
            "eval": {"metrics": ["perplexity"], "tasks": []}, "grid": {"loop.regimes": ["fully_synthetic"]}}
    path.write_text(yaml.safe_dump(spec))
    return path


def children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def worker_started(out: Path) -> bool:
    """A worker holds the sweep's workers lock (or, without one, writes into the run folder)."""
    import fcntl

    from madbench.results.lock import WORKERS_LOCK_NAME

    if (out / "runs" / "base" / "events.jsonl").is_file():
        return True
    if not (out / WORKERS_LOCK_NAME).is_file():
        return False
    with open(out / WORKERS_LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def test_second_sweep_refused_and_workers_die_with_a_killed_parent(tmp_path):
    spec, out = spec_file(tmp_path / "s.yaml"), tmp_path / "sweep"
    cmd = [sys.executable, "-m", "madbench", "sweep", "--config", str(spec), "--output-dir", str(out), "--workers", "1"]
    parent = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not worker_started(out):
            time.sleep(0.2)
        workers = children(parent.pid)
        assert workers, "the sweep started no worker"

        one_line_error(cli("sweep", "--config", spec, "--output-dir", out), f"in use by madbench pid {parent.pid}")
        one_line_error(cli("run", "--resume", out / "runs" / "base"), f"in use by madbench pid {parent.pid}")

        os.kill(parent.pid, signal.SIGKILL)  # the parent only: its workers must follow it
        parent.wait()
        deadline = time.time() + 20
        while time.time() < deadline and any(alive(p) for p in workers):
            time.sleep(0.2)
        assert not [p for p in workers if alive(p)], "a worker outlived its sweep"
    finally:
        for pid in [parent.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_rerun_refused_while_a_leftover_worker_holds_the_folder(tmp_path):
    from madbench.results.lock import WORKERS_LOCK_NAME

    spec, out = spec_file(tmp_path / "s.yaml"), tmp_path / "sweep"
    out.mkdir()
    code = ("import fcntl, time; h = open(%r, 'a+'); fcntl.flock(h, fcntl.LOCK_SH); print('held', flush=True); time.sleep(600)"
            % str(out / WORKERS_LOCK_NAME))
    leftover = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert leftover.stdout.readline().strip() == "held"
        one_line_error(cli("sweep", "--config", spec, "--output-dir", out), "worker process of an earlier sweep is still running")
        assert not (out / "runs").exists() or not list((out / "runs").rglob("meta.json"))
    finally:
        leftover.kill()
        leftover.wait()
