"""Hostile submissions (issue 14, cases 1 and 9): values no chart can draw, duplicate keys, a failed build.

    .venv/bin/python -m pytest -q tests/test_faults_leaderboard.py
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, madbench
from madbench.leaderboard import bundle
from madbench.leaderboard import scores
from madbench.leaderboard import site
from madbench.leaderboard.validate import check_file

SHIPPED = ROOT / "leaderboard" / "submissions" / "smoke-tiny-761528f493e4.json"


def rebuilt(data: dict) -> dict:
    """Re-derive summary, scores and hash the way madbench submit would, so only the planted value is wrong."""
    data["summary"] = bundle.summary(data["config"], data["chains"])
    data["scores"] = scores.scores_block(data["chains"], data["metrics_info"])
    data["content_hash"] = bundle.content_hash(data)
    return data


@pytest.mark.parametrize("value", [1e308, -1e308, 1e16])
def test_values_no_chart_can_draw_are_refused(tmp_path, value):
    data = json.loads(SHIPPED.read_text())
    for gen in data["chains"][0]["generations"]:
        gen["metrics"]["perplexity"] = value
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(rebuilt(data)))
    checked = check_file(path)
    assert not checked.ok
    assert "chains/0/generations/0/metrics/perplexity" in str(checked.error) and "magnitude" in str(checked.error)


def test_chart_copes_with_extreme_values():
    from madbench.leaderboard.svg import line_chart, nice_ticks

    assert nice_ticks(-1e308, 1e308)  # the span overflows to inf: no OverflowError
    svg = line_chart([{"label": "x", "points": [(0, -1e308), (1, 1e308)]}], title="perplexity")
    assert svg.startswith("<svg") and "nan" not in svg.lower()


def test_failed_build_leaves_the_previous_site_intact(tmp_path):
    good = json.loads(SHIPPED.read_text())
    out = tmp_path / "site"
    site.build([good], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = json.loads(json.dumps(good))
    del broken["scores"]["groups"][0]["scores"]  # the renderer fails half-way
    with pytest.raises(Exception):
        site.build([good, broken], out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name != "site"]  # no temp folder left behind


@pytest.mark.slow
def test_build_of_a_huge_value_submission_keeps_the_site(tmp_path):
    """The observed attack end to end: a +/-1e308 file is skipped by build, the existing site stays."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.json").write_text(SHIPPED.read_text())
    out = tmp_path / "site"
    madbench("leaderboard", "build", "--submissions", subs, "--out", out, check=True)
    data = json.loads(SHIPPED.read_text())
    for i, gen in enumerate(data["chains"][0]["generations"]):
        gen["metrics"]["perplexity"] = 1e308 if i % 2 else -1e308
    (subs / "b.json").write_text(json.dumps(rebuilt(data)))
    proc = madbench("leaderboard", "build", "--submissions", subs, "--out", out)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "skipping" in proc.stderr and "b.json" in proc.stderr
    assert (out / "index.html").is_file()


def test_duplicate_json_keys_are_rejected(tmp_path):
    text = SHIPPED.read_text()
    data = json.loads(text)
    assert data["submitter"] != "mallory"
    # a reviewer reading the top of the file sees one submitter; a plain json.loads keeps the last
    doctored = text.replace('"submitter":', '"submitter": "mallory", "submitter":', 1)
    path = tmp_path / "dup.json"
    path.write_text(doctored)
    checked = check_file(path)
    assert not checked.ok and "duplicate key 'submitter'" in str(checked.error)
