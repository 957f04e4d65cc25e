"""The submission flow end to end: `madbench submit` says what to do next, and the repository's CI workflow runs.

    .venv/bin/python -m pytest -q tests/test_leaderboard_flow.py
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from conftest import ROOT, madbench

pytestmark = pytest.mark.slow  # spawns the CLI on a smoke run; the workflow test runs in a fresh venv

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


def test_the_leaderboard_workflow_runs_as_written_in_an_empty_venv(fresh_venv, tmp_path):
    """Every `run:` line of .github/workflows/leaderboard.yml, in order, in a checkout holding the repository's
    submissions. Two substitutions only, as for the plug-in example's workflow: $MADBENCH is the wheel, and the
    CPU torch index is this machine's local disk (torch==2.13.0 is already there: pip keeps it)."""
    import yaml

    checkout = tmp_path / "madbench"
    shutil.copytree(ROOT / "leaderboard" / "submissions", checkout / "leaderboard" / "submissions")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow[True]) >= {"pull_request"}  # PyYAML reads the key `on` as True
    env = {**fresh_venv.env(), **{k: str(v) for k, v in workflow["env"].items()}, "MADBENCH": str(fresh_venv.wheel)}
    env.pop("MADBENCH_CACHE", None)
    env["HOME"] = str(tmp_path / "home")
    steps = [s for s in workflow["jobs"]["leaderboard"]["steps"] if "run" in s]
    assert [s["run"].split()[:3] for s in steps[1:]] == [["madbench", "leaderboard", "validate"],
                                                         ["madbench", "leaderboard", "build"]]
    for s in steps:
        script = s["run"].replace(" --index-url https://download.pytorch.org/whl/cpu", "")
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert proc.returncode == 0, f"step '{s['name']}' failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if "validate" in s["run"]:
            shipped = len(list((checkout / "leaderboard" / "submissions").glob("*.json")))
            assert f"{shipped} valid, 0 invalid" in proc.stdout
    site = checkout / "leaderboard" / "site"
    assert (site / "index.html").is_file() and (site / "curves.html").is_file() and (site / "t" / "tiny-fs.html").is_file()
