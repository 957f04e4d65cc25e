"""Shared fixtures: a per-session model cache and one real smoke run folder.

The smoke run uses the tiny model (built offline in seconds) and the real CLI,
so every test that needs results.json reads files a real run wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def madbench_cache(tmp_path_factory):
    if "MADBENCH_CACHE" not in os.environ:
        os.environ["MADBENCH_CACHE"] = str(tmp_path_factory.mktemp("madbench-cache"))
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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, madbench_cache) -> Path:
    """A finished `madbench run --preset smoke` folder (3 regimes x 3 generations, tiny model)."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    madbench("run", "--preset", "smoke", "--output-dir", out, check=True)
    return out
