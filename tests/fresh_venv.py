"""A session fixture: an EMPTY venv with torch, then madbench's wheel from PyPI's resolve, then ``madbench download``.

    .venv/bin/python -m pytest -q -s tests/test_packaging.py -k empty_venv   # prints each step's seconds

The way a user installs: ``python -m venv``, ``pip install torch==2.13.0`` (the CPU wheel; on this
machine from local disk), ``pip install madbench-*.whl`` (every dependency resolved by pip),
``madbench download``. Built once per session and shared (tests/test_plugin_example.py reuses it).
Each step's wall seconds land in ``FreshVenv.seconds`` and in ``<venv>/../steps.json``.
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


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory) -> FreshVenv:
    tmp = tmp_path_factory.mktemp("fresh-venv")
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
    step("pip install torch==2.13.0", [py, "-m", "pip", "install", "-q", "torch==2.13.0"])
    step("pip install madbench wheel", [py, "-m", "pip", "install", "-q", venv.wheel])
    venv.before_download = venv.run("madbench", "run", "--dry-run", cwd=elsewhere).stderr
    step("madbench download", [venv.bin / "madbench", "download"])
    (tmp / "steps.json").write_text(json.dumps(venv.seconds, indent=1))
    print(f"\nfresh venv steps (s): {venv.seconds}")
    return venv
