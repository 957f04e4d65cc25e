"""Issue 28, cases 2 and 7: results.json and the files that feed training are tied to their bytes.

    .venv/bin/python -m pytest -q tests/test_faults_evidence.py

One small real run (tiny model, one chain, 1 generation) per module; each test edits its own copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import madbench

SMALL = ["--preset", "smoke", "loop.regimes=[fully_synthetic]", "loop.generations=1", "eval.tasks=[]",
         "eval.metrics=[perplexity,distinct_2]"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evidence") / "small"
    madbench("run", *SMALL, "--output-dir", out, check=True)
    return out


@pytest.fixture
def run(small_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(small_run, copy)
    return copy


def one_line(proc, *needles):
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("madbench: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


def flip_a_digit(run: Path) -> None:
    """117.98 -> 317.98: the first digit of generation 0's perplexity, the file still valid JSON and schema."""
    path = run / "results.json"
    data = json.loads(path.read_text())
    gen = data["chains"][0]["generations"][0]["metrics"]
    gen["perplexity"] = float("3" + repr(gen["perplexity"])[1:])
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.slow
@pytest.mark.parametrize("command", [["report"], ["table"], ["submit", "--out"]])
def test_flipped_digit_in_results_refused(run, tmp_path, command):
    flip_a_digit(run)
    args = [command[0], run, *(["--out", tmp_path / "sub.json"] if command[1:] else [])]
    if command[0] == "report":
        args += ["--out", tmp_path / "report"]
    proc = madbench(*args)
    one_line(proc, "results.json", "--resume")


@pytest.mark.slow
def test_load_results_refuses_and_resume_recollects(run):
    from madbench.errors import MadbenchError
    from madbench.results.collect import load_results

    load_results(run)  # untouched: fine
    flip_a_digit(run)
    with pytest.raises(MadbenchError, match="changed after it was collected"):
        load_results(run)
    madbench("run", "--resume", run, check=True)
    assert load_results(run)["chains"][0]["generations"][0]["metrics"]["perplexity"] < 300
