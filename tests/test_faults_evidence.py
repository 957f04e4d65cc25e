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


def flip_byte_in_text(path: Path) -> None:
    """One letter of a sample text changed: still valid JSON, so only a checksum sees it."""
    raw = path.read_text()
    at = raw.index('"text": "') + len('"text": "') + 2
    path.write_text(raw[:at] + ("x" if raw[at] != "x" else "y") + raw[at + 1:])


@pytest.mark.slow
def test_gen0_sample_cache_is_checked_on_resume_and_repaired(run):
    """A flipped byte in gen0/seed*/samples-*.json was trained on after a resume at 43094ef."""
    before = json.loads((run / "results.json").read_text())["chains"][0]["generations"]
    cache = sorted(run.glob("gen0/seed*/samples-*.json"))[0]
    flip_byte_in_text(cache)
    one_line(madbench("run", "--resume", run), str(cache.name), "--repair")
    madbench("run", "--resume", run, "--repair", check=True)
    after = json.loads((run / "results.json").read_text())["chains"][0]["generations"]
    assert [g["metrics"] for g in after] == [g["metrics"] for g in before]  # recomputed bit for bit


@pytest.mark.slow
def test_ecosystem_file_damage_is_one_line_and_repaired(tmp_path):
    """A truncated ecosystems/*/gen_*.json gave a traceback on every resume, --repair did not fix it; an edited
    value flowed into results.json."""
    run = tmp_path / "eco"
    madbench("run", "--preset", "smoke", "loop.regimes=[ecosystem]", "loop.ecosystem.members=2", "loop.generations=1",
             "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]", "--output-dir", run, check=True)
    path = sorted(run.glob("ecosystems/*/gen_*.json"))[-1]
    good = json.loads(path.read_text())
    edited = {**good, "cross_self_bleu": 0.0}
    path.write_text(json.dumps(edited))
    one_line(madbench("run", "--resume", run), path.name, "--repair")
    path.write_text(path.read_text()[:20])  # truncated
    one_line(madbench("run", "--resume", run), path.name, "--repair")
    madbench("run", "--resume", run, "--repair", check=True)
    assert json.loads(path.read_text()) == good
