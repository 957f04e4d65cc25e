"""Contamination schedules (loop.synthetic_share): parsing, mixes, pre-flight errors and a real run.

    .venv/bin/python -m pytest -q tests/test_schedules.py
"""

from __future__ import annotations

import json

import pytest

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.loop.regimes import REGIMES, RegimeContext
from madbench.loop.schedules import shares

from conftest import madbench


def test_forms_give_one_share_per_generation():
    assert shares(None, 4) is None and shares("", 4) is None
    assert shares(0.7, 3) == [0.7, 0.7, 0.7] and shares("0.25", 2) == [0.25, 0.25]
    assert shares("linear:0.1:0.9", 5) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert shares([0.1, 0.3, 0.5, 0.7, 0.9, 1.0], 3) == [0.1, 0.3, 0.5]  # extra values ignored
    assert shares("0.2,0.4", 2) == [0.2, 0.4]
    logistic = shares("logistic:0.1:0.9", 5)
    assert logistic == sorted(logistic) and logistic[2] == pytest.approx(0.5)  # midpoint at the middle generation
    assert logistic[0] > 0.1 and logistic[-1] < 0.9
    steep = shares("logistic:0:1:2:10", 3)
    assert steep[0] < 0.001 and steep[1] == pytest.approx(0.5) and steep[2] > 0.999


@pytest.mark.parametrize("spec,message", [
    ([0.1, 1.2, 0.5], "outside \\[0, 1\\]"),
    ("linear:-0.1:0.9", "START is -0.1, outside"),
    ([0.1, 0.3], "lists 2 shares but loop.generations=3"),
    ("lineal:0.1:0.9", "did you mean 'linear'"),
    ("linear:0.1", "write linear:START:END"),
    ("logistic:0.1:x", "END must be a number"),
    (True, "must be a share"),
])
def test_bad_schedules_are_one_clear_error(spec, message):
    with pytest.raises(MadbenchError, match=message):
        shares(spec, 3)


def ctx(generation, fractions, accumulate=False, train_docs=10):
    pool = [Doc(f"h{i:06d}", f"real {i}") for i in range(train_docs)]
    fresh = [Doc(f"h{100 + i:06d}", f"fresh {i}") for i in range(40)]
    synthetic = {g: [Doc(f"g{g:03d}-{i:05d}", f"syn {g} {i}") for i in range(train_docs)] for g in range(generation)}
    return RegimeContext(generation=generation, train_docs=train_docs, real_fraction=fractions[generation - 1],
                         pool=pool, fresh=fresh, synthetic=synthetic, accumulate=accumulate, real_fractions=tuple(fractions))


def test_scheduled_fresh_slices_follow_the_schedule_and_stay_disjoint():
    fractions = [1 - s for s in shares("linear:0.1:0.9", 5)]
    mixes = [REGIMES.get("fresh_data")(ctx(g, fractions)) for g in range(1, 6)]
    reals = [[d.id for d in m if d.id.startswith("h")] for m in mixes]
    assert [len(r) for r in reals] == [9, 7, 5, 3, 1] and all(len(m) == 10 for m in mixes)
    flat = [i for r in reals for i in r]
    assert len(flat) == len(set(flat)) == 25
    assert flat == [f"h{100 + i:06d}" for i in range(25)]  # consecutive slices of the fresh pool, none skipped


def test_scheduled_augmentation_keeps_the_fixed_real_prefix():
    fractions = [0.75, 0.5, 0.25]
    mixes = [REGIMES.get("synthetic_augmentation")(ctx(g, fractions, train_docs=8)) for g in (1, 2, 3)]
    reals = [[d.id for d in m if d.id.startswith("h")] for m in mixes]
    assert reals == [[f"h{i:06d}" for i in range(n)] for n in (6, 4, 2)] and all(len(m) == 8 for m in mixes)


SMALL = ["--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]"]


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["loop.regimes=[fresh_data]", "loop.synthetic_share=[0.1,1.5]"], "loop.synthetic_share: value 2 (generation 2) is 1.5, outside [0, 1]"),
    (["loop.regimes=[fresh_data]", "loop.synthetic_share=[0.1]"], "loop.synthetic_share lists 1 shares but loop.generations=2"),
    (["loop.regimes=[fully_synthetic]", "loop.synthetic_share=0.5"], "loop.regimes has none of them"),
    (["loop.regimes=[fresh_data]", "data.max_docs=100", "loop.generations=5"],
     "fresh_data needs 12 new real documents per generation x 5 generations = 60"),
    (["loop.regimes=[fresh_data]", "data.max_docs=100", "loop.generations=3", "loop.synthetic_share=[0.5,0,0]"],
     "fresh_data needs 60 new real documents over 3"),
])
def test_bad_schedules_and_small_pools_fail_before_training(tmp_path, args, message):
    out = tmp_path / "run"
    proc = madbench("run", *SMALL, *args, "--output-dir", out)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("madbench: error: ") and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "gen0").exists()  # nothing was trained


@pytest.mark.slow
def test_ramped_run_records_target_and_actual_share_per_generation(tmp_path):
    out = tmp_path / "ramp"
    madbench("run", *SMALL, "loop.regimes=[synthetic_augmentation,fresh_data,fully_synthetic]",
             "loop.synthetic_share=[0.25,0.75]", "--output-dir", out, check=True)
    results = json.loads((out / "results.json").read_text())
    by_regime = {c["regime"]: c["generations"] for c in results["chains"]}
    for regime in ("synthetic_augmentation", "fresh_data"):
        gens = by_regime[regime]
        assert [g["synthetic_share_target"] for g in gens] == [0.0, 0.25, 0.75]
        assert [g["synthetic_fraction"] for g in gens] == [0.0, 0.25, 0.75]  # 24 docs: 18 + 6, then 6 + 18
    assert all("synthetic_share_target" not in g for g in by_regime["fully_synthetic"])
    fresh2 = json.loads((out / "chains" / "fresh_data-replace-s0" / "gen_002" / "mix.json").read_text())
    fresh1 = json.loads((out / "chains" / "fresh_data-replace-s0" / "gen_001" / "mix.json").read_text())
    real = [{d["id"] for d in m["documents"] if d["source"] == "real"} for m in (fresh1, fresh2)]
    assert [len(r) for r in real] == [18, 6] and not real[0] & real[1]
