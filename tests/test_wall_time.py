"""Wall time survives resumes: results.json sums every segment and records each.

    .venv/bin/python -m pytest -q tests/test_wall_time.py

A finished run resumed (or the same command re-run) used to overwrite ``wall_seconds`` with the
few seconds of the no-op resume; it also reloaded the model and redrew every plot.
"""

from __future__ import annotations

import json

import pytest
from conftest import madbench

from madbench.results.collect import earlier_segments

SMALL = ["loop.regimes=[fully_synthetic]", "loop.generations=1", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]"]


def _wall(run):
    data = json.loads((run / "results.json").read_text())
    return data["wall_seconds"], data["wall_segments"]


@pytest.mark.slow
def test_a_resumed_finished_run_adds_a_segment_and_keeps_the_first(tmp_path):
    run = tmp_path / "run"
    madbench("run", "--preset", "smoke", "--output-dir", run, *SMALL, check=True, timeout=900)
    total, segments = _wall(run)
    assert len(segments) == 1 and segments[0] > 1 and total == segments[0]
    proc = madbench("run", "--resume", run, check=True)
    assert "every generation was already done" in proc.stdout  # no model load, no plot redraw
    total2, segments2 = _wall(run)
    assert segments2[0] == segments[0] and len(segments2) == 2
    assert total2 == pytest.approx(sum(segments2)) and total2 >= total
    madbench("run", "--preset", "smoke", "--output-dir", run, *SMALL, check=True)  # the same command again
    assert len(_wall(run)[1]) == 3 and _wall(run)[1][0] == segments[0]


def test_a_results_file_from_before_segments_counts_as_one_segment(tmp_path):
    old = tmp_path / "results.json"
    old.write_text(json.dumps({"wall_seconds": 25.0, "chains": []}))
    assert earlier_segments(old) == [25.0]
    old.write_text(json.dumps({"wall_seconds": 30.5, "wall_segments": [25.0, 5.5]}))
    assert earlier_segments(old) == [25.0, 5.5]
    assert earlier_segments(tmp_path / "absent.json") == []
