"""Issue 41, B1 and B7: a number beyond float range in any field of a submission (or a merge part) is refused
in one line when it is read, before any code touches it.

    .venv/bin/python -m pytest -q -p no:xdist tests/test_faults_hostile3.py
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from madbench.leaderboard.validate import check_file

SHIPPED = ROOT / "leaderboard" / "submissions" / "smoke-tiny-761528f493e4.json"


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "-1" + "0" * 400, "1e400"])
def test_number_beyond_float_range_is_refused_when_read(tmp_path, literal):
    data = json.loads(SHIPPED.read_text())
    gen = data["chains"][0]["generations"][0]
    gen["intervals"] = {"perplexity": [1, "HUGE"]}
    data["run"]["wall_seconds"] = "HUGE"
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data).replace('"HUGE"', literal))
    checked = check_file(path)  # was an OverflowError traceback (B1)
    assert not checked.ok and "beyond float range" in str(checked.error), checked.error
    assert "\n" not in str(checked.error)


def test_shipped_submission_still_reads():
    assert check_file(SHIPPED).ok
