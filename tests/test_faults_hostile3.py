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


# one bounded reader (madbench/results/untrusted.py) for submissions, run-folder files and monitor inputs

from madbench.errors import MadbenchError  # noqa: E402
from madbench.results import untrusted  # noqa: E402
from madbench.results.integrity import try_read_json  # noqa: E402
from madbench.monitoring.panel import load_panels  # noqa: E402


@pytest.mark.parametrize("text, field, words", [
    ('{"a": {"b": [1, ' + "1" + "0" * 400 + ']}}', "a/b/1", "beyond float range"),
    ('{"a": {"b": 1e400}}', "a/b", "beyond float range"),
    ('{"a": NaN}', "a", "NaN"),
    ('{"a": 1, "a": 2}', "(top level)", "duplicate key"),
    ('{"a": "' + "x" * 200 + '"}', "a", "character limit"),
    ('{"a": ' + "[" * 80 + "]" * 80 + "}", None, "nests too deeply"),
    ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "(file)", "nests too deeply"),
])
def test_bounded_reader_names_file_and_field(tmp_path, text, field, words):
    path = tmp_path / "in.json"
    path.write_text(text)
    with pytest.raises(untrusted.UntrustedJSON) as info:
        untrusted.read(path, max_string=100)
    assert words in info.value.message and str(path) in str(info.value)
    if field:
        assert info.value.field == field
    assert "\n" not in str(info.value)


def test_run_folder_reader_keeps_nan_refuses_huge(tmp_path):
    ok = tmp_path / "meta.json"
    ok.write_text('{"metrics": {"rare_token_mass_ratio": NaN}}')
    data, why = try_read_json(ok)
    assert why is None and data["metrics"]["rare_token_mass_ratio"] != data["metrics"]["rare_token_mass_ratio"]
    bad = tmp_path / "results.json"
    bad.write_text('{"chains": [{"generations": [{"metrics": {"perplexity": ' + "9" * 400 + '}}]}]}')
    data, why = try_read_json(bad)
    assert data is None and "chains/0/generations/0/metrics/perplexity" in why and "beyond float range" in why
    assert try_read_json(tmp_path / "none.json") == (None, "is missing")


def test_monitor_reads_through_the_bounded_reader(tmp_path):
    data = json.loads(SHIPPED.read_text())
    data["chains"][0]["generations"][0]["metrics"]["perplexity"] = "HUGE"
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data).replace('"HUGE"', "1" + "0" * 400))
    with pytest.raises(MadbenchError) as info:  # was an OverflowError traceback (B5)
        load_panels([str(path)])
    assert "chains/0/generations/0/metrics/perplexity" in str(info.value)
    assert load_panels([str(SHIPPED)])


@pytest.mark.parametrize("edit", ["no_id", "generation_x", "metrics_list"])
def test_monitor_hostile_chain_is_one_line(tmp_path, edit):
    from conftest import cli

    data = json.loads(SHIPPED.read_text())
    chain = data["chains"][0]
    if edit == "no_id":
        del chain["id"]
    elif edit == "generation_x":
        chain["generations"][1]["generation"] = "x"
    else:
        chain["generations"][0]["metrics"] = [1, 2]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    proc = cli("monitor", path)  # was a KeyError / ValueError traceback (B5)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "chains/0" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", [10**9, 1e9, "x", -1])
def test_monitor_refuses_generations_beyond_the_bound(tmp_path, value):
    from conftest import cli

    data = json.loads(SHIPPED.read_text())
    data["config"]["loop"]["generations"] = value
    path = tmp_path / "gens.json"
    path.write_text(json.dumps(data))
    proc = cli("monitor", "--score", path)  # 1e9 asked for 146 TiB (B5)
    assert proc.returncode == 2 and "config/loop/generations" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("value", [10**9, 1e9])
def test_validate_refuses_generations_beyond_the_bound(tmp_path, value):
    from madbench.leaderboard import bundle

    data = json.loads(SHIPPED.read_text())
    data["config"]["loop"]["generations"] = value
    data["content_hash"] = bundle.content_hash(data)
    path = tmp_path / "gens.json"
    path.write_text(json.dumps(data))
    checked = check_file(path)  # was accepted in an open submission (B5)
    assert not checked.ok and checked.error.field == "config/loop/generations", checked.error


TRACK = ROOT / "leaderboard" / "submissions" / "track-tiny-fs-tiny-26ef58669eed.json"


@pytest.mark.parametrize("how", ["null", "missing"])
def test_track_submission_with_a_nulled_seed_is_refused(tmp_path, how):
    from madbench.leaderboard import bundle

    data = json.loads(TRACK.read_text())
    last = data["chains"][1]["generations"][-1]["metrics"]
    if how == "null":
        last["perplexity"] = None
    else:
        del last["perplexity"]
        data["chains"][1]["generations"][-1].get("intervals", {}).pop("perplexity", None)
    data["content_hash"] = bundle.content_hash(data)
    path = tmp_path / "nulled.json"
    path.write_text(json.dumps(data))
    checked = check_file(path)  # validated, and moved a mitigation's rank (B2)
    assert not checked.ok and checked.error.field.endswith("metrics/perplexity") and how in checked.error.message, checked.error
    assert check_file(TRACK).ok
