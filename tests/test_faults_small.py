"""Issue 28, case 10: the smaller ones, each one line instead of a traceback, a hang or a lost file.

    .venv/bin/python -m pytest -q tests/test_faults_small.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from madbench.errors import MadbenchError

SHIPPED = ROOT / "leaderboard" / "submissions" / "smoke-tiny-761528f493e4.json"


def cli(*args):
    from madbench.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def minimal_results(folder, copies: int = 1):
    """A schema-valid results.json without the optional run_name, train_docs, num_samples (from the shipped run)."""
    data = json.loads(SHIPPED.read_text())
    chains = []
    for k in range(copies):
        for c in data["chains"]:
            gens = [{key: g[key] for key in ("generation", "metrics", "train_tokens", "synthetic_fraction", "seconds")}
                    for g in c["generations"]]
            chains.append({**c, "id": f"{c['id']}-{k}", "seed": k, "generations": gens})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({
        "schema_version": "1.0", "config": data["config"], "config_hash": "x", "environment": data["environment"],
        "chains": chains, "metrics_info": data["metrics_info"], "complete": True}))
    return folder


def test_build_out_naming_a_file_keeps_the_file(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.json").write_text(SHIPPED.read_text())
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    code, err = cli("leaderboard", "build", "--submissions", subs, "--out", notes)
    assert code == 2 and "is a file, not a folder" in err, err
    assert notes.read_text() == "my notes"


def test_fifo_corpus_is_refused_not_read(tmp_path):
    from madbench.config.preflight import preflight
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)
    with pytest.raises(MadbenchError, match="not a regular file"):
        preflight(build_config(PRESETS.get("smoke")(), None, [f"data.corpus={fifo}"]))


@pytest.mark.parametrize("verb", ["table", "report", "submit"])
def test_results_without_optional_fields_work(tmp_path, verb):
    import madbench

    run = minimal_results(tmp_path / "run")
    assert madbench.load_results(run).run_name == "smoke"
    extra = {"report": ["--out", tmp_path / "rep"], "submit": ["--out", tmp_path / "s.json"]}.get(verb, [])
    code, err = cli(verb, run, *extra)
    assert code == 0 and "Traceback" not in err, err


def test_deeply_nested_results_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}")
    for verb, extra in [("table", []), ("report", ["--out", tmp_path / "rep"]), ("submit", ["--out", tmp_path / "s.json"])]:
        code, err = cli(verb, run, *extra)
        assert code == 2 and "nests too deeply" in err, (verb, err)


@pytest.mark.parametrize("name", ["run\u202etxt.exe", "ru\u200bn", "a\u2066b"])
def test_bidi_and_zero_width_names_refused(name):
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    with pytest.raises(MadbenchError, match="bidi-override or zero-width"):
        build_config(PRESETS.get("smoke")(), None, [f"name={name}"])


def test_bidi_chain_name_in_a_submission_refused(tmp_path):
    from madbench.leaderboard import bundle
    from madbench.leaderboard import scores
    from madbench.leaderboard.validate import check_file

    data = json.loads(SHIPPED.read_text())
    data["chains"][0]["id"] = "fully_synthetic\u202e-replace-s0"
    data["scores"] = scores.scores_block(data["chains"], data["metrics_info"])
    data["content_hash"] = bundle.content_hash(data)
    path = tmp_path / "bidi.json"
    path.write_text(json.dumps(data))
    checked = check_file(path)
    assert not checked.ok and "chains/0/id" in str(checked.error), checked.line()


@pytest.mark.slow
def test_table_into_head_is_quiet(tmp_path):
    run = minimal_results(tmp_path / "run", copies=400)  # ~3600 rows: more than a pipe buffer
    proc = subprocess.run(f"'{sys.executable}' -m madbench table '{run}' | head -2", shell=True, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stdout.splitlines()) == 2
