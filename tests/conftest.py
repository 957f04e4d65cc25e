"""Shared fixtures and helpers: a per-session model cache, the tiny model, one real smoke run folder, the CLI.

    python -m pytest -q -m "not slow" tests        # the fast inner loop (docs/developing.md)

Under pytest-xdist (the README's test command: ``-n 2``) each worker runs single-threaded torch (two
workers on two cores), and the session fixtures that cost a minute or more (the smoke run, the fresh
venv) are built once for all workers (:func:`once_per_session`).

The smoke run uses the tiny model (shipped with madbench) and the real CLI,
so every test that needs results.json reads files a real run wrote. Helpers a test file imports
(``from conftest import ...``): :func:`madbench` (the CLI in a subprocess), :func:`cli` (the CLI in
this process), :func:`one_line_error`, :func:`tiny_model`, :func:`start_madbench` and :func:`signal_when`
(kill a run once a generation is published), :func:`tiny_with_adapter`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker, before torch is imported (subprocesses inherit it)
    os.environ["OMP_NUM_THREADS"] = "1"

import pytest
from fresh_venv import fresh_venv  # noqa: F401  (session fixture: an empty venv with the wheel, tests/fresh_venv.py)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def madbench_cache(tmp_path_factory):
    if "MADBENCH_CACHE" not in os.environ:  # one cache for all xdist workers (models are published atomically, once)
        shared = tmp_path_factory.getbasetemp().parent / "madbench-cache" if os.environ.get("PYTEST_XDIST_WORKER") else None
        os.environ["MADBENCH_CACHE"] = str(shared or tmp_path_factory.mktemp("madbench-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Path(os.environ["MADBENCH_CACHE"])


def madbench(*args, cwd=None, timeout=600, check=False):
    """Run the real CLI in a subprocess; return CompletedProcess (text)."""
    proc = subprocess.run([sys.executable, "-m", "madbench", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"madbench {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def cli(*args) -> subprocess.CompletedProcess:
    """The real CLI in this process (an error path needs no fresh interpreter): exit code, stdout, stderr."""
    from madbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def one_line_error(proc, *needles, alone=False) -> str:
    """Assert exit status 2, no traceback and exactly one ``madbench: error:`` line holding every needle; return it.
    ``alone=True``: that line is the whole of stderr (no warnings beside it)."""
    assert proc.returncode == 2, (proc.stdout or "")[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("madbench: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    if alone:
        assert proc.stderr.strip().splitlines() == errors, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def start_madbench(*args, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """The real CLI as a background process (stderr piped, text) that a test can signal."""
    return subprocess.Popen([sys.executable, "-m", "madbench", *map(str, args)], cwd=ROOT, env=os.environ.copy(),
                            stdout=stdout, stderr=subprocess.PIPE, text=True,
                            # a background job (`pytest &`) ignores SIGINT, and children inherit that: restore Ctrl-C
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until ``path`` exists (e.g. a generation's meta.json, written last), failing if ``proc`` ends first."""
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, f"run ended before {path} appeared: {proc.communicate()[1][-2000:]}"
        assert time.time() - start < timeout, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def signal_when(proc: subprocess.Popen, path: Path, sig=signal.SIGKILL, timeout: float = 300) -> tuple:
    """Send ``sig`` to ``proc`` once ``path`` exists; return its (stdout, stderr) after it ends."""
    wait_for(path, proc, timeout)
    proc.send_signal(sig)
    return proc.communicate(timeout=120)


def tiny_model(*overrides):
    """(cfg, split, tokenizer, model): the smoke preset's tiny model (with config overrides), built offline."""
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model

    cfg = build_config(PRESETS.get("smoke")(), None, list(overrides))
    split = load_split(cfg)
    tokenizer, model = load_base(resolve_model(cfg, split), cfg)
    return cfg, split, tokenizer, model


@pytest.fixture(scope="module")
def tiny(madbench_cache):
    """The smoke preset's tiny model, one per test module (tests may train it): see :func:`tiny_model`."""
    return tiny_model()


def tiny_with_adapter():
    """(cfg, split, tokenizer, model): the smoke preset's tiny model with a LoRA adapter whose B is not zero
    (B = 0 would leave the merged weights equal to the base's), in eval mode."""
    import torch

    from madbench.training.trainer import make_peft_model

    cfg, split, tokenizer, base = tiny_model()
    model = make_peft_model(base, cfg, 0, None)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    return cfg, split, tokenizer, model.eval()


def once_per_session(tmp_path_factory, name: str, make):
    """``make(folder) -> JSON value``, run once per test session however many xdist workers share it: the first
    worker to ask builds it under a file lock in the session's shared temporary root, the others read its value."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent  # one per session, shared by its workers
    done = root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if done.is_file():
            return json.loads(done.read_text())
        folder = root / name
        folder.mkdir(exist_ok=True)
        value = make(folder)
        done.write_text(json.dumps(value))
        return value


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, madbench_cache) -> Path:
    """A finished `madbench run --preset smoke` folder (3 regimes x 3 generations, tiny model)."""
    def make(folder: Path) -> str:
        out = folder / "smoke"
        madbench("run", "--preset", "smoke", "--output-dir", out, check=True)
        return str(out)

    return Path(once_per_session(tmp_path_factory, "smoke-run", make))
