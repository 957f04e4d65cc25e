"""A session fixture: an EMPTY venv with torch, then madbench's wheel from PyPI's resolve, then ``madbench download``.

    .venv/bin/python -m pytest -q -s tests/test_packaging.py -k empty_venv   # prints each step's seconds

The way a user installs: ``python -m venv``, ``pip install torch==2.13.0`` (the CPU wheel), ``pip install
madbench-*.whl`` (every dependency resolved from PyPI), ``madbench download``. Built once per test
session and shared by every worker (tests/test_plugin_example.py reuses it). When the dev environment
has uv, it installs instead of pip (several times faster, the same metadata and PyPI): torch from
the machine's own wheel folder only (pip's ``find-links``; never an index, which would serve the CUDA
build), then the wheel with every dependency resolved from PyPI. Without uv, pip does both. Each step's wall seconds land in
``FreshVenv.seconds`` and in ``<venv>/../steps.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FreshVenv:
    root: Path
    wheel: Path
    seconds: dict = field(default_factory=dict)
    before_download: str = ""  # stderr of `madbench run --dry-run` on the default before `madbench download`

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self, **extra) -> dict:
        """The environment of a shell in this venv: its bin first, no PYTHONPATH (no checkout leaks in)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(self.root), **extra)
        return env

    def run(self, *cmd, cwd, timeout=1200, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([str(c) for c in cmd], cwd=cwd, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, **kw)


def build_wheel(tmp: Path) -> Path:
    """The wheel of a clean copy of this checkout (an in-tree build/ could hide a missing package-data entry)."""
    src = tmp / "src"
    shutil.copytree(ROOT / "madbench", src / "madbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheels"),
                    str(src)], check=True, capture_output=True, text=True, timeout=300, cwd=tmp)
    return next((tmp / "wheels").glob("madbench-*.whl"))


def local_wheel_folders() -> list:
    """The find-links folders of pip's configuration (where this machine keeps the CPU torch wheel), if any."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    folders = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            folders += [f for f in value.strip().strip("'\"").split() if Path(f).is_dir()]
    return list(dict.fromkeys(folders))


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory) -> FreshVenv:
    from conftest import once_per_session

    made = once_per_session(tmp_path_factory, "fresh-venv", make_fresh_venv)
    return FreshVenv(Path(made["root"]), Path(made["wheel"]), made["seconds"], made["before_download"])


def make_fresh_venv(tmp: Path) -> dict:
    venv = FreshVenv(tmp / "venv", Path())
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()

    def step(name, cmd, timeout=1800):
        start = time.perf_counter()
        proc = subprocess.run([str(c) for c in cmd], cwd=elsewhere, env=venv.env(), capture_output=True, text=True,
                              timeout=timeout)
        venv.seconds[name] = round(time.perf_counter() - start, 1)
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc

    start = time.perf_counter()
    venv.wheel = build_wheel(tmp)
    venv.seconds["build wheel"] = round(time.perf_counter() - start, 1)
    step("python -m venv", [sys.executable, "-m", "venv", venv.root])
    py = venv.bin / "python"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    local = local_wheel_folders()
    if uv and local:  # torch from this machine's wheel folder only: never a CUDA build from the index
        step("uv pip install torch==2.13.0", [uv, "pip", "install", "-q", "--python", py, "--no-index", "--no-deps",
                                               *(x for f in local for x in ("--find-links", f)), "torch==2.13.0"])
    else:
        step("pip install torch==2.13.0", [py, "-m", "pip", "install", "-q", "torch==2.13.0"])
    if uv:
        step("uv pip install madbench wheel", [uv, "pip", "install", "-q", "--python", py, venv.wheel])
    else:
        step("pip install madbench wheel", [py, "-m", "pip", "install", "-q", venv.wheel])
    venv.before_download = venv.run("madbench", "run", "--dry-run", cwd=elsewhere).stderr
    step("madbench download", [venv.bin / "madbench", "download"])
    (tmp / "steps.json").write_text(json.dumps(venv.seconds, indent=1))
    print(f"\nfresh venv steps (s): {venv.seconds}")
    return {"root": str(venv.root), "wheel": str(venv.wheel), "seconds": venv.seconds, "before_download": venv.before_download}
