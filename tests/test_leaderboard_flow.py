"""The submission flow end to end: `madbench submit` says what to do next, and the repository's CI workflow runs.

    .venv/bin/python -m pytest -q tests/test_leaderboard_flow.py
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, madbench

pytestmark = pytest.mark.slow  # spawns the CLI on a smoke run and the workflow's commands

WORKFLOW = ROOT / ".github" / "workflows" / "leaderboard.yml"


def test_submit_prints_exactly_what_to_do_next(smoke_run, tmp_path):
    out = tmp_path / "mine.json"
    proc = madbench("submit", smoke_run, "--out", out, check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"madbench: wrote {out} (") and out.is_file()
    check = next(line for line in lines if "1. check it:" in line).split("check it:", 1)[1].strip()
    assert check == f"madbench leaderboard validate {out}"
    step = next(line for line in lines if "3. submit it:" in line)
    assert f"leaderboard/submissions/{out.name}" in step and "pull request" in proc.stdout
    assert ".github/workflows/leaderboard.yml" in proc.stdout and "open submission" in proc.stdout
    argv = shlex.split(check)
    assert argv[:3] == ["madbench", "leaderboard", "validate"]
    ran = madbench(*argv[1:])  # the printed command works as printed
    assert ran.returncode == 0 and "1 valid, 0 invalid" in ran.stdout, ran.stderr


def test_the_leaderboard_workflow_runs_as_written(tmp_path):
    """Every `run:` line of .github/workflows/leaderboard.yml after the install step, in order, as written, in a
    checkout holding the repository's submissions, with this checkout's madbench on PATH and no plug-in autoloaded
    (the workflow's env). The install step itself (CPU torch, then the checkout) is the one test_packaging runs in an
    empty venv; here it is only read: linking this venv's torch into a fresh one lets an installer write through it."""
    import os
    import sys

    import yaml

    checkout = tmp_path / "madbench"
    shutil.copytree(ROOT / "leaderboard" / "submissions", checkout / "leaderboard" / "submissions")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow[True]) >= {"pull_request"}  # PyYAML reads the key `on` as True
    env = {**os.environ, **{k: str(v) for k, v in workflow["env"].items()}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p)
    install, *steps = [s for s in workflow["jobs"]["leaderboard"]["steps"] if "run" in s]
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install["run"]
    assert 'pip install "$MADBENCH"' in install["run"] and workflow["env"]["MADBENCH"] == "."
    assert [s["run"].split()[:3] for s in steps] == [["madbench", "leaderboard", "validate"], ["madbench", "leaderboard", "build"]]
    for s in steps:
        proc = subprocess.run(["bash", "-e", "-c", s["run"]], cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"step '{s['name']}' failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if "validate" in s["run"]:
            shipped = len(list((checkout / "leaderboard" / "submissions").glob("*.json")))
            assert f"{shipped} valid, 0 invalid" in proc.stdout
    site = checkout / "leaderboard" / "site"
    assert (site / "index.html").is_file() and (site / "curves.html").is_file() and (site / "t" / "tiny-fs.html").is_file()
    bad = checkout / "leaderboard" / "submissions" / "broken.json"  # and the gate closes on a bad file
    bad.write_text("{}")
    proc = subprocess.run(["bash", "-e", "-c", steps[0]["run"]], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 1 and "FAIL" in proc.stderr and "broken.json" in proc.stderr
