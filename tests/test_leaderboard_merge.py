"""Seeds run apart and merged (`madbench submit RUN --merge-with EARLIER.json`) give the submission that one run of
all the seeds gives; parts that did not compute the same way are refused in one line (madbench/leaderboard/merge.py).

    .venv/bin/python -m pytest -q tests/test_leaderboard_merge.py
"""

from __future__ import annotations

import copy
import json

import pytest

from conftest import cli, madbench, one_line_error
from madbench.errors import MadbenchError
from madbench.leaderboard import merge, site

SMALL = ["--preset", "smoke", "loop.regimes=[fully_synthetic]", "loop.generations=1", "eval.tasks=[]",
         "eval.metrics=[perplexity,distinct_2]", "loop.mitigations=[none,mix_real]"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory, madbench_cache):
    root = tmp_path_factory.mktemp("merge")
    for name, seeds in [("s0", "[0]"), ("s1", "[1]"), ("both", "[0,1]")]:
        madbench("run", *SMALL, f"loop.seeds={seeds}", "--output-dir", root / name, check=True)
        madbench("submit", root / name, "--out", root / f"{name}.json", check=True)
    return root


def test_two_seed_runs_merged_equal_one_run_of_both_seeds(parts, tmp_path):
    out = tmp_path / "merged.json"
    proc = madbench("submit", parts / "s1", "--merge-with", parts / "s0.json", "--out", out, check=True)
    assert proc.stdout.startswith(f"madbench: wrote {out}")
    merged, joint = (json.loads(p.read_text()) for p in (out, parts / "both.json"))
    assert merged["config"] == joint["config"] and merged["run"]["config_hash"] == joint["run"]["config_hash"]
    assert merged["summary"] == joint["summary"] and merged["summary"]["seeds"] == [0, 1]
    assert [c["id"] for c in merged["chains"]] == [c["id"] for c in joint["chains"]]
    metrics = lambda sub: [[g["metrics"] for g in c["generations"]] for c in sub["chains"]]  # noqa: E731
    assert metrics(merged) == metrics(joint)  # a chain depends on its own seed only
    assert merged["scores"] == joint["scores"]  # so every interval over seeds is the joint run's
    env = merged["environment"]
    assert [p["seeds"] for p in env["parts"]] == [[0], [1]] and all(p["git"] for p in env["parts"])
    ok = madbench("leaderboard", "validate", out)
    assert ok.returncode == 0 and "1 valid, 0 invalid" in ok.stdout, ok.stderr
    page = site.render_submission(merged)
    assert "Merged from" in page and "seeds 0 at" in page and "seeds 1 at" in page
    # merging the merged file again would hold a seed twice
    again = cli("submit", parts / "s1", "--merge-with", out, "--out", tmp_path / "twice.json")
    one_line_error(again, "seed(s) 1 are in both")
    assert not (tmp_path / "twice.json").exists()


def test_parts_that_differ_are_refused_in_one_line(parts, tmp_path):
    from madbench.results.collect import load_results

    earlier = json.loads((parts / "s0.json").read_text())
    results = load_results(parts / "s1")
    for change, needle in [(lambda r: r["config"]["sampling"].update(temperature=0.5), "differs from this run's at sampling.temperature"),
                           (lambda r: r["environment"]["versions"].update(torch="0.0"), "environment.versions differs"),
                           (lambda r: r["environment"].update(computed_on=[{"processor": "other", "device": "cpu",
                                                                             "dtype": "float32"}]), "bit-comparable"),
                           (lambda r: r["metrics_info"].pop("distinct_2"), "metrics differ")]:
        other = copy.deepcopy(results)
        change(other)
        with pytest.raises(MadbenchError, match=needle):
            merge.merge_results(other, earlier, parts / "s0.json")
    tampered = tmp_path / "tampered.json"
    edited = copy.deepcopy(earlier)
    edited["chains"][0]["generations"][0]["metrics"]["perplexity"] *= 0.5
    tampered.write_text(json.dumps(edited))
    proc = cli("submit", parts / "s1", "--merge-with", tampered, "--out", tmp_path / "m.json")
    one_line_error(proc, "does not validate", "content_hash")
    assert not (tmp_path / "m.json").exists()


def test_a_track_run_may_be_a_shard_of_its_seeds_and_a_shard_is_never_submitted_alone(parts):
    from argparse import Namespace

    from madbench.config.tracks import TRACKS
    from madbench.leaderboard.submit import _refuse_shard

    ok = cli("run", "--track", "tiny-fs", "loop.mitigations=[[mix_real]]", "loop.seeds=[0,1]", "--dry-run")
    assert ok.returncode == 0, ok.stderr
    one_line_error(cli("run", "--track", "tiny-fs", "loop.mitigations=[[mix_real]]", "loop.seeds=[0,99]", "--dry-run"),
                   "loop.seeds as a subset of")  # a seed the track does not have is another protocol
    track = TRACKS.get("tiny-fs").config().to_dict()
    for seeds, refused in [([0, 1], True), (track["loop"]["seeds"], False)]:
        results = {"config": {**track, "name": "track-tiny-fs", "loop": {**track["loop"], "seeds": seeds}}}
        args = Namespace(track=None, run_dir="runs/shard")
        if refused:
            with pytest.raises(MadbenchError, match=r"holds seeds \[0, 1\] of track tiny-fs's .*--merge-with"):
                _refuse_shard(args, results)
        else:
            _refuse_shard(args, results)
        _refuse_shard(Namespace(track="open", run_dir="runs/shard"), results)  # an open submission may hold any seeds


def test_the_seeds_of_a_run_submitted_apart_equal_a_run_of_those_seeds(parts, tmp_path):
    out = tmp_path / "one.json"
    madbench("submit", parts / "both", "--seeds", "1", "--out", out, check=True)
    picked, alone = (json.loads(p.read_text()) for p in (out, parts / "s1.json"))
    assert picked["config"] == alone["config"] and picked["run"]["config_hash"] == alone["run"]["config_hash"]
    metrics = lambda sub: [[g["metrics"] for g in c["generations"]] for c in sub["chains"]]  # noqa: E731
    assert [c["id"] for c in picked["chains"]] == [c["id"] for c in alone["chains"]]
    assert metrics(picked) == metrics(alone) and picked["scores"] == alone["scores"]
    one_line_error(cli("submit", parts / "both", "--seeds", "7", "--out", tmp_path / "x.json"), "has no seed 7")
    one_line_error(cli("submit", parts / "both", "--seeds", "a,b", "--out", tmp_path / "x.json"), "comma-separated")
    assert not (tmp_path / "x.json").exists()
