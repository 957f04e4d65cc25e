"""Issue 28, case 1: whatever `leaderboard validate` accepts, `leaderboard build` renders.

    .venv/bin/python -m pytest -q tests/test_faults_pipeline.py

hypothesis is not installed in the project's venv, so a seeded generator draws schema-valid
submissions from the shipped ones: extreme legal metric values (1e-294, 5e-324, +-1e12, 0),
optional generation fields dropped, generations cut, a track declared or not. Each one is
validated; every one that validates must build the site without raising.
"""

from __future__ import annotations

import json
import random

import pytest

from conftest import ROOT, madbench
from madbench.leaderboard import bundle
from madbench.leaderboard import scores
from madbench.leaderboard import site
from madbench.leaderboard.validate import check_file

SUBS = ROOT / "leaderboard" / "submissions"
SHIPPED = SUBS / "smoke-tiny-761528f493e4.json"
TRACK = SUBS / "track-tiny-fs-tiny-26ef58669eed.json"
EXTREME = [0.0, 1e-294, -1e-294, 5e-324, 1e12, -1e12, 1e-12, 3.5, 117.97, 0.5, 1.0, 999999999999.0, 2.2250738585072014e-308]
OPTIONAL = ["train_tokens", "train_docs", "synthetic_fraction", "num_samples", "num_kept", "seconds", "train_loss_last",
            "mitigations", "intervals"]


def rebuilt(data: dict) -> dict:
    """Re-derive summary, scores and hash the way madbench submit would."""
    data["summary"] = bundle.summary(data["config"], data["chains"])
    data["scores"] = scores.scores_block(data["chains"], data["metrics_info"])
    data["content_hash"] = bundle.content_hash(data)
    return data


def forged(rng: random.Random) -> dict:
    data = json.loads((TRACK if rng.random() < 0.5 else SHIPPED).read_text())
    rate = rng.choice([0.0, 0.05, 0.15, 0.4])  # how much of this file is forged
    for chain in data["chains"]:
        if rng.random() < rate:
            chain["generations"] = chain["generations"][:rng.randint(1, len(chain["generations"]))]
        for gen in chain["generations"]:
            for key in list(gen["metrics"]):
                if rng.random() < rate:
                    gen["metrics"][key] = rng.choice(EXTREME + [None])
            for key in OPTIONAL:
                if key in gen and rng.random() < rate:
                    del gen[key]
    try:
        return rebuilt(data)
    except ValueError:  # a value the canonical JSON cannot hold: submit itself would refuse it
        return None


def test_whatever_validates_builds(tmp_path):
    rng = random.Random(28)
    built = 0
    for i in range(80):
        data = forged(rng)
        if data is None:
            continue
        path = tmp_path / f"sub-{i}.json"
        path.write_text(json.dumps(data))
        checked = check_file(path)  # never raises
        if checked.ok:
            site.build([checked.data], tmp_path / "site")
            built += 1
    assert built >= 10  # the generator reaches valid files, not only refusals


def test_track_submission_without_synthetic_fraction_validates_and_builds_or_is_refused(tmp_path):
    """The observed case: the optional field dropped from a track submission; before, build died with KeyError."""
    data = json.loads(TRACK.read_text())
    for chain in data["chains"]:
        for gen in chain["generations"]:
            gen.pop("synthetic_fraction", None)
    path = tmp_path / "nofrac.json"
    path.write_text(json.dumps(rebuilt(data)))
    checked = check_file(path)
    if checked.ok:
        site.build([checked.data], tmp_path / "site")
    else:
        assert "synthetic_fraction" in str(checked.error)


@pytest.mark.slow
def test_tiny_generation0_perplexity_is_one_line(tmp_path):
    """A generation-0 perplexity of 1e-294 (inside the 1e12 cap): validate died with OverflowError in fsum."""
    data = json.loads(SHIPPED.read_text())
    for chain in data["chains"]:
        chain["generations"][0]["metrics"]["perplexity"] = 1e-294
    try:
        data = rebuilt(data)
    except (OverflowError, ValueError):
        data["content_hash"] = bundle.content_hash(data)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "tiny.json").write_text(json.dumps(data))
    (subs / "good.json").write_text(SHIPPED.read_text())
    proc = madbench("leaderboard", "validate", subs)
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    assert "tiny.json" in proc.stderr
    proc = madbench("leaderboard", "build", "--submissions", subs, "--out", tmp_path / "site")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def _track_forgery(edit) -> dict:
    data = json.loads(TRACK.read_text())
    edit(data)
    return rebuilt(data)


def _drop_generations_and_keys(d):
    """The observed attack: protocol keys deleted and 1 of 4 generations kept (ranked #1 at -50.5% at 43094ef)."""
    del d["config"]["loop"]["generations"], d["config"]["loop"]["seeds"], d["config"]["train"]["learning_rate"]
    for c in d["chains"]:
        c["generations"] = c["generations"][:2]


def _other_regime(d):
    for c in d["chains"]:
        c["regime"] = "fresh_data"


def _incomplete(d):
    d["run"]["complete"] = False
    d["chains"][3]["complete"] = False


def _value_to_object(d):
    d["config"]["loop"]["generations"] = {"value": 4}


def _one_seed(d):
    d["chains"] = [c for c in d["chains"] if c["seed"] == 0]


@pytest.mark.parametrize("edit,needle", [
    (_drop_generations_and_keys, "loop.generations"),
    (_other_regime, "chains"),
    (_incomplete, "incomplete"),
    (_value_to_object, "loop.generations"),
    (_one_seed, "chains"),
], ids=["dropped-keys", "other-regime", "incomplete", "value-to-object", "one-seed"])
def test_track_submission_must_follow_the_protocol(tmp_path, edit, needle):
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(_track_forgery(edit)))
    checked = check_file(path)
    assert not checked.ok and needle in str(checked.error), checked.line()
    assert check_file(TRACK).ok  # the shipped track submission still validates


def _copy_of_shipped(submitter: str, created: str) -> dict:
    data = json.loads(SHIPPED.read_text())
    data["submitter"], data["created"] = submitter, created
    data["content_hash"] = bundle.content_hash(data)
    return data


def test_copy_saved_first_by_name_is_refused_by_created_time(tmp_path):
    """A copy with another submitter saved as 0-copy.json knocked out the original at 43094ef (file-name order)."""
    from madbench.leaderboard.validate import check_many

    (tmp_path / "smoke.json").write_text(SHIPPED.read_text())
    (tmp_path / "0-copy.json").write_text(json.dumps(_copy_of_shipped("copier", "2099-01-01T00:00:00+00:00")))
    copy, original = check_many(sorted(tmp_path.glob("*.json")))
    assert original.ok, original.line()
    assert not copy.ok and "smoke.json" in str(copy.error) and "submitted earlier" in str(copy.error)


@pytest.mark.slow
def test_git_history_beats_a_forged_created_time(tmp_path):
    """The copy claims an earlier `created`; the repository's history says the original came first."""
    import subprocess

    from madbench.leaderboard.validate import check_many

    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "smoke.json").write_text(SHIPPED.read_text())
    git("add", "smoke.json")
    git("-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qm", "original")
    (tmp_path / "0-copy.json").write_text(json.dumps(_copy_of_shipped("copier", "2000-01-01T00:00:00+00:00")))
    copy, original = check_many(sorted(tmp_path.glob("*.json")))
    assert original.ok, original.line()
    assert not copy.ok and "smoke.json" in str(copy.error) and "not committed" in str(copy.error)
