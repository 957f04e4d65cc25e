"""Leaderboard tracks: a frozen protocol per track, `madbench run --track`, and the budget-aware ranking.

    .venv/bin/python -m pytest -q tests/test_tracks.py
"""

from __future__ import annotations

import pytest
from conftest import madbench

from madbench.config.tracks import TRACKS, human_share, protocol_diff, rank


@pytest.mark.slow
def test_list_shows_the_tracks():
    proc = madbench("list", "tracks", check=True)
    assert "tiny-fs" in proc.stdout and "smollm2-fs" in proc.stdout and "human-data budget 10%" in proc.stdout


@pytest.mark.slow
def test_a_track_run_is_its_protocol_plus_your_mitigation_beside_the_baseline(tmp_path):
    proc = madbench("run", "--track", "tiny-fs", "loop.mitigations=[mix_real]", "mitigation_params.mix_real.fraction=0.05",
                    "--output-dir", tmp_path / "t", "--dry-run", check=True)
    chains = [line.split()[1].rstrip(":") for line in proc.stdout.splitlines() if line.startswith("#   ")]
    assert chains == [f"fully_synthetic-replace-s{s}{m}" for s in range(6) for m in ("", "-mix_real")]
    import yaml

    cfg = yaml.safe_load(proc.stdout.split("# config hash")[0])
    assert protocol_diff(cfg, TRACKS.get("tiny-fs")) == []
    assert cfg["name"] == "track-tiny-fs" and cfg["mitigation_params"] == {"mix_real": {"fraction": 0.05}}


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["loop.mitigations=[mix_real]", "loop.generations=2", "train.epochs=1"],
     "--track tiny-fs freezes the protocol; these settings would change it: loop.generations, train.epochs"),
    (["loop.mitigations=[mix_real]", "loop.seeds=[0,6]"], "would change it: loop.seeds"),  # [0] alone is a shard (test_leaderboard_merge.py)
    ([], "give loop.mitigations=[your_mitigation]"),
])
def test_a_protocol_change_is_one_line_listing_the_keys(tmp_path, args, expected):
    proc = madbench("run", "--track", "tiny-fs", *args, "--output-dir", tmp_path / "t", "--dry-run")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_an_unknown_track_gets_a_did_you_mean():
    proc = madbench("run", "--track", "tiny_fs", "loop.mitigations=[mix_real]", "--dry-run")
    assert proc.returncode == 2 and "unknown track 'tiny_fs'; did you mean 'tiny-fs'?" in proc.stderr


def _chain(mits, seed, ppl_last, synthetic=1.0):
    gens = [{"generation": 0, "synthetic_fraction": 0.0, "metrics": {"perplexity": 100.0}},
            {"generation": 1, "synthetic_fraction": synthetic, "metrics": {"perplexity": (100.0 + ppl_last) / 2}},
            {"generation": 2, "synthetic_fraction": synthetic, "metrics": {"perplexity": ppl_last}}]
    return {"id": f"s{seed}{mits}", "mitigations": list(mits), "seed": seed, "generations": gens}


def test_rank_puts_effect_with_intervals_beside_the_human_data_spent():
    chains = ([_chain((), s, p) for s, p in enumerate([130.0, 132.0, 128.0])]
              # the best effect, but half of every mix is human text: over the 10% budget, ranked after the others
              + [_chain(("watermark_filter",), s, p, synthetic=0.5) for s, p in enumerate([103.0, 104.0, 102.0])]
              + [_chain(("mix_real",), s, p, synthetic=0.9) for s, p in enumerate([118.0, 119.0, 117.0])]
              + [_chain(("length_filter",), s, p) for s, p in enumerate([127.0, 135.0, 122.0])])
    rows = rank({"chains": chains}, TRACKS.get("tiny-fs"))
    assert [r["mitigation"] for r in rows] == ["mix_real", "length_filter", "watermark_filter"]
    mix, length, wm = rows
    assert mix["effect_pct"] == pytest.approx(-12 / 130 * 100) and mix["separated"] and mix["within_budget"]
    assert mix["human_share"] == pytest.approx(0.1) and mix["rank"] == 1
    assert not length["separated"] and length["effect_pct"] == pytest.approx(-2 / 130 * 100)
    assert wm["effect_pct"] == pytest.approx(-27 / 130 * 100) and not wm["within_budget"] and wm["human_share"] == pytest.approx(0.5)
    lo, hi = mix["ci95_pct"]
    assert lo < mix["effect_pct"] < hi and mix["baseline_ci95_pct"][0] > hi  # intervals separate
    assert human_share(chains[0]) == 0.0
