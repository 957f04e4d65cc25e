"""Leaderboard: scores, submit -> validate -> build from a real smoke run, broken and hostile submissions.

    .venv/bin/python -m pytest -q tests/test_leaderboard.py
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from conftest import ROOT, madbench
from madbench.leaderboard import bundle
from madbench.leaderboard import scores
from madbench.leaderboard.validate import check_file

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


def chain(ppl, d2, regime="fully_synthetic", seed=0, mitigations=()):
    return {"id": f"{regime}-s{seed}", "regime": regime, "mode": "replace", "seed": seed, "mitigations": list(mitigations),
            "complete": True, "generations": [{"generation": g, "metrics": {"perplexity": p, "distinct_2": d}}
                                              for g, (p, d) in enumerate(zip(ppl, d2))]}


def test_scores_by_hand():
    c = chain([10.0, 10.5, 12.0, 16.0], [0.8, 0.6, 0.4, 0.2])
    s = scores.chain_scores(c)
    assert s["ppl_increase_pct"] == pytest.approx(60.0)
    assert s["diversity_retained"] == pytest.approx(0.25)
    # degradation 0, 5, 20, 60 -> trapezoids 2.5 + 12.5 + 40 = 55 over 3 generations
    assert s["ppl_auc"] == pytest.approx(55 / 3)
    # distinct-2 loss 0, 25, 50, 75 % -> 12.5 + 37.5 + 62.5 = 112.5 / 3
    assert s["diversity_auc"] == pytest.approx(37.5)
    assert s["gens_to_ppl_degrade"] == 2  # +5% at 1, +20% at 2
    assert s["perplexity_last"] == 16.0 and s["distinct_2_last"] == 0.2
    never = scores.chain_scores(chain([10.0, 10.1, 10.2], [0.5, 0.5, 0.5]))
    assert never["gens_to_ppl_degrade"] == 3  # censored: last generation + 1
    assert never["diversity_retained"] == pytest.approx(1.0)
    assert scores.chain_scores(chain([10.0], [0.5]))["ppl_increase_pct"] is None  # generation 0 only
    assert all(isinstance(d["higher_is_better"], bool) for d in scores.definitions())


def test_scores_over_seeds_use_stats():
    rows = scores.group_scores([chain([10, 12], [0.5, 0.4], seed=0), chain([10, 14], [0.5, 0.3], seed=1),
                                chain([10, 11], [0.5, 0.5], regime="fresh_data")])
    assert [r["label"] for r in rows] == ["fully_synthetic/replace", "fresh_data/replace"]
    ppl = rows[0]["scores"]["ppl_increase_pct"]
    assert ppl["n"] == 2 and ppl["mean"] == pytest.approx(30.0) and ppl["std"] == pytest.approx(math.sqrt(200))
    assert ppl["ci95_low"] < 30 < ppl["ci95_high"]
    assert rows[1]["scores"]["ppl_increase_pct"]["n"] == 1


@pytest.fixture(scope="module")
def submission(smoke_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("subs") / "good.json"
    proc = madbench("submit", smoke_run, "--out", out, "--submitter", "tester", "--notes", "smoke", check=True)
    assert str(out) in proc.stdout
    return out


def resave(data: dict, path: Path, rehash: bool = True) -> Path:
    if rehash:
        data["content_hash"] = bundle.content_hash(data)
    path.write_text(json.dumps(data, indent=1))
    return path


@pytest.mark.slow
def test_submit_writes_a_valid_self_contained_bundle(submission, smoke_run):
    data = json.loads(submission.read_text())
    results = json.loads((smoke_run / "results.json").read_text())
    assert data["content_hash"] == bundle.content_hash(data)
    assert data["config"] == results["config"] and data["chains"] == results["chains"]
    assert data["summary"]["model"] == results["config"]["model"]["name"]
    assert {g["label"] for g in data["scores"]["groups"]} == {f"{c['regime']}/{c['mode']}" for c in results["chains"]}
    assert check_file(submission).ok
    proc = madbench("leaderboard", "validate", submission)
    assert proc.returncode == 0, proc.stderr
    assert "1 valid, 0 invalid" in proc.stdout


@pytest.mark.slow
def test_broken_submissions_are_rejected_one_line_each(submission, tmp_path):
    good = json.loads(submission.read_text())
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a_good.json").write_text(submission.read_text())
    (folder / "bad_json.json").write_text('{"format": "madbench-submission", ')
    wrong = json.loads(json.dumps(good)); wrong["chains"][0]["regime"] = 7
    resave(wrong, folder / "wrong_schema.json")
    tampered = json.loads(json.dumps(good)); tampered["chains"][0]["generations"][-1]["metrics"]["perplexity"] *= 0.5
    resave(tampered, folder / "tampered.json", rehash=False)
    cheat = json.loads(json.dumps(good)); cheat["scores"]["groups"][0]["scores"]["ppl_increase_pct"]["mean"] = -50.0
    resave(cheat, folder / "cheat_scores.json")
    unknown = json.loads(json.dumps(good)); unknown["chains"][0]["mitigations"] = ["magic"]
    resave(unknown, folder / "unknown_name.json")
    (folder / "oversized.json").write_text(json.dumps({**good, "notes": "x" * (bundle.MAX_BYTES + 10)}))
    (folder / "z_duplicate.json").write_text(submission.read_text())

    proc = madbench("leaderboard", "validate", folder)
    assert proc.returncode == 1
    fails = [line for line in proc.stderr.splitlines() if line.startswith("FAIL")]
    expected = {"bad_json.json": "(file)", "wrong_schema.json": "chains/0/regime", "tampered.json": "content_hash",
                "cheat_scores.json": "scores/groups/0/scores/ppl_increase_pct/mean", "unknown_name.json": "chains/0/mitigations/0",
                "oversized.json": "(file)", "z_duplicate.json": "content_hash"}
    assert len(fails) == len(expected), proc.stderr
    for name, field in expected.items():
        line = next(line for line in fails if f"{name}:" in line)
        assert f"field '{field}'" in line, line
    assert re.search(r"^ok +\S*a_good\.json", proc.stdout, re.M)
    assert "1 valid, 7 invalid" in proc.stdout

    site = tmp_path / "site"
    proc = madbench("leaderboard", "build", "--submissions", folder, "--out", site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning: skipping") == 7
    index = (site / "index.html").read_text()
    assert index.count("<tr data-model=") == len(good["scores"]["groups"])
    assert len(list((site / "s").glob("*.html"))) == 1
    proc = madbench("leaderboard", "build", "--submissions", folder, "--out", folder)  # never wipe a non-site folder
    assert proc.returncode == 2 and "not a leaderboard site" in proc.stderr and (folder / "a_good.json").is_file()


@pytest.mark.slow
def test_site_escapes_hostile_strings(submission, tmp_path):
    data = json.loads(submission.read_text())
    data["submitter"] = data["notes"] = HOSTILE
    data["config"]["model"]["name"] = data["summary"]["model"] = HOSTILE
    data["environment"]["computed_on"] = [{"processor": HOSTILE}, {"processor": "AMD EPYC | avx2 | AVX2"}]  # a resumed run
    folder = tmp_path / "subs"
    folder.mkdir()
    resave(data, folder / "hostile.json")
    assert check_file(folder / "hostile.json").ok  # strings are data, not errors
    proc = madbench("leaderboard", "build", "--submissions", folder, "--out", tmp_path / "site", check=True)
    assert "0 skipped" in proc.stdout
    for page in [tmp_path / "site" / "index.html", *(tmp_path / "site" / "s").glob("*.html")]:
        html = page.read_text()
        assert "window.__pwned" in html  # shown ...
        assert "<script>window" not in html and "<img" not in html  # ... only as text
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    page = next((tmp_path / "site" / "s").glob("*.html")).read_text()
    assert "then AMD EPYC | avx2 | AVX2 <span class=\"na\">(resumed on another kind of machine)" in page


@pytest.mark.slow
def test_repository_submissions_validate():
    """CI gate: every file shipped in leaderboard/submissions/ must validate."""
    assert list((ROOT / "leaderboard" / "submissions").glob("*.json")), "the repository must ship a submission"
    proc = madbench("leaderboard", "validate", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    proc = madbench("leaderboard", "validate", ROOT / "leaderboard" / "does-not-exist")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.slow
def test_validation_guarantees_what_the_docs_say_and_no_more(submission, tmp_path):
    """Docs used to claim "any edit after submit is detected"; an edit that recomputes the hash is not."""
    from madbench.leaderboard import validate

    data = json.loads(submission.read_text())
    data["chains"][0]["generations"][-1]["metrics"]["perplexity"] *= 0.5  # an invented number
    careless = tmp_path / "careless.json"
    careless.write_text(json.dumps(data))
    assert "corrupted or edited" in str(check_file(careless).error)  # caught: the checksum no longer matches
    stale = dict(data, content_hash=bundle.content_hash(data))
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    assert "scores/groups" in str(check_file(tmp_path / "stale.json").error)  # caught: scores no longer follow
    data["scores"] = scores.scores_block(data["chains"], data["metrics_info"])
    data["content_hash"] = bundle.content_hash(data)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    assert check_file(forged).ok  # not caught, and the docs say so
    for text in (validate.__doc__, bundle.__doc__, (ROOT / "docs" / "leaderboard.md").read_text()):
        assert "not a signature" in text and "any edit after" not in text


def _track_submission() -> Path:
    found = sorted((ROOT / "leaderboard" / "submissions").glob("track-tiny-fs-*.json"))
    assert found, "the repository ships a tiny-fs track submission"
    return found[0]


def test_a_track_submission_must_follow_its_protocol(tmp_path):
    path = _track_submission()
    good = json.loads(path.read_text())
    assert good["track"] == "tiny-fs" and check_file(path).ok
    changed = json.loads(json.dumps(good))
    changed["config"]["loop"]["generations"] = 3
    changed["config"]["train"]["epochs"] = 1
    renamed = json.loads(json.dumps(good)); renamed["track"] = "tiny_fs"
    alone = json.loads(json.dumps(good)); alone["chains"] = [c for c in alone["chains"] if c["mitigations"]]
    cases = {"changed": (changed, "config", "differs from track tiny-fs's protocol at: loop.generations, train.epochs"),
             "renamed": (renamed, "track", "unknown track 'tiny_fs'; did you mean 'tiny-fs'?"),
             "alone": (alone, "chains", "needs the unmitigated baseline")}
    for name, (data, field, message) in cases.items():
        item = check_file(resave(data, tmp_path / f"{name}.json"))
        assert not item.ok and item.error.field == field and message in item.error.message, item.line()


@pytest.mark.slow
def test_submit_declares_a_track_only_for_a_run_that_follows_it(submission, smoke_run, tmp_path):
    proc = madbench("submit", smoke_run, "--track", "tiny_fs", "--out", tmp_path / "x.json")
    assert proc.returncode == 2 and "unknown track 'tiny_fs'; did you mean 'tiny-fs'?" in proc.stderr
    proc = madbench("submit", smoke_run, "--track", "tiny-fs", "--out", tmp_path / "x.json")
    line = proc.stderr.strip()
    assert proc.returncode == 2 and "differs from track tiny-fs's protocol at:" in line and "loop.generations" in line
    assert not (tmp_path / "x.json").exists()
    assert "track" not in json.loads(submission.read_text())  # an ordinary run is an open submission


@pytest.mark.slow
def test_the_site_ranks_a_track_apart_from_the_open_submissions(submission, tmp_path):
    from madbench.leaderboard.tracks_view import track_rows

    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "open.json").write_text(submission.read_text())
    (folder / "track.json").write_text(_track_submission().read_text())
    madbench("leaderboard", "build", "--submissions", folder, "--out", tmp_path / "site", check=True)
    index = (tmp_path / "site" / "index.html").read_text()
    open_groups = len(json.loads(submission.read_text())["scores"]["groups"])
    assert index.count("<tr data-model=") == open_groups  # the open table holds only the open submission
    track = json.loads((folder / "track.json").read_text())
    rows = track_rows([track], "tiny-fs")
    assert len(rows) == len({"+".join(c["mitigations"]) for c in track["chains"] if c["mitigations"]})
    within = [r for r in rows if r["within_budget"]]
    assert all(not r["within_budget"] for r in rows[len(within):])
    tiers = [r["tier"] for r in rows]
    assert tiers == sorted(tiers) and tiers[0] == 1  # tier by tier, the best mitigation first
    for t in set(tiers):
        effects = [r["effect_pct"] for r in rows if r["tier"] == t]
        assert effects == sorted(effects)
    section = index.split('id="track-tiny-fs"')[1].split('</table>')[0] if 'id="track-tiny-fs"' in index else ""
    assert [m for m in re.findall(r'data-mitigation="([^"]+)"', section)] == [r["mitigation"] for r in rows]
    assert f"{rows[0]['effect_pct']:+.1f}%" in section and 'data-tier="1"' in section and "Holm" in index
    assert "no submissions yet" in index.split('id="track-smollm2-fs"')[1]
