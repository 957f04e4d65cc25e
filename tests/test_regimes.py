"""Regimes are pure policies: check each training mix against its definition."""

from __future__ import annotations

import pytest

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.loop.regimes import REGIMES, RegimeContext, parse_regime


def ctx(generation, accumulate=False, real_fraction=0.5, train_docs=8):
    pool = [Doc(f"h{i:06d}", f"real {i}") for i in range(20)]
    fresh = [Doc(f"h{100 + i:06d}", f"fresh {i}") for i in range(40)]
    synthetic = {g: [Doc(f"g{g:03d}-{i:05d}", f"syn {g} {i}") for i in range(train_docs)] for g in range(generation)}
    return RegimeContext(generation=generation, train_docs=train_docs, real_fraction=real_fraction, pool=pool,
                         fresh=fresh, synthetic=synthetic, accumulate=accumulate)


def ids(docs):
    return [d.id for d in docs]


def test_fully_synthetic_replace_uses_only_last_generation():
    mix = REGIMES.get("fully_synthetic")(ctx(3))
    assert ids(mix) == [f"g002-{i:05d}" for i in range(8)]


def test_fully_synthetic_accumulate_keeps_every_generation():
    mix = REGIMES.get("fully_synthetic")(ctx(3, accumulate=True))
    assert len(mix) == 24 and {d.id[:4] for d in mix} == {"g000", "g001", "g002"}
    assert not any(d.id.startswith("h") for d in mix)


def test_synthetic_augmentation_fixed_real_set_across_generations():
    mixes = [REGIMES.get("synthetic_augmentation")(ctx(g)) for g in (1, 2, 3)]
    reals = [[d.id for d in m if d.id.startswith("h")] for m in mixes]
    assert reals[0] == reals[1] == reals[2] and len(reals[0]) == 4
    assert all(len(m) == 8 for m in mixes)


def test_fresh_data_gets_disjoint_new_slices():
    reals = [{d.id for d in REGIMES.get("fresh_data")(ctx(g)) if d.id.startswith("h")} for g in (1, 2, 3)]
    assert all(len(r) == 4 for r in reals)
    assert not (reals[0] & reals[1]) and not (reals[1] & reals[2]) and not (reals[0] & reals[2])
    pool_ids = {f"h{i:06d}" for i in range(20)}
    assert not any(r & pool_ids for r in reals)


def test_real_fraction_sets_the_proportion():
    mix = REGIMES.get("synthetic_augmentation")(ctx(1, real_fraction=0.25))
    assert sum(d.id.startswith("h") for d in mix) == 2 and len(mix) == 8


def test_accumulate_mix_grows():
    sizes = [len(REGIMES.get("synthetic_augmentation")(ctx(g, accumulate=True))) for g in (1, 2, 3)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_fresh_data_running_out_is_a_clear_error():
    with pytest.raises(MadbenchError, match="fresh_data needs"):
        REGIMES.get("fresh_data")(ctx(11))


@pytest.mark.parametrize("spec,expected", [("fully_synthetic", ("fully_synthetic", "replace")),
                                           ("fresh_data/accumulate", ("fresh_data", "accumulate"))])
def test_parse_regime(spec, expected):
    assert parse_regime(spec) == expected


def test_unknown_regime_suggests_the_close_name():
    with pytest.raises(MadbenchError, match="did you mean 'fully_synthetic'"):
        parse_regime("fully_synthtic")
    with pytest.raises(MadbenchError, match="unknown regime mode"):
        parse_regime("fully_synthetic/acumulate")


def test_accumulate_subsample_draws_a_fixed_budget_from_everything_accumulated():
    from madbench.loop.regimes import apply_mode

    assert parse_regime("fully_synthetic/accumulate_subsample") == ("fully_synthetic", "accumulate_subsample")
    c = ctx(3, accumulate=True)
    full = REGIMES.get("fully_synthetic")(c)
    mix = apply_mode(full, "accumulate_subsample", c, seed=7)
    assert len(full) == 24 and len(mix) == 8  # the data grows, the budget stays data.train_docs
    assert set(ids(mix)) <= set(ids(full)) and len(set(ids(mix))) == 8
    assert {d.id[:4] for d in mix} != {"g002"}  # drawn across generations, not just the last one
    assert ids(apply_mode(full, "accumulate_subsample", c, seed=7)) == ids(mix)  # seeded
    assert ids(apply_mode(full, "accumulate_subsample", c, seed=8)) != ids(mix)
    assert apply_mode(full, "accumulate", c, seed=7) == full
    assert ids(apply_mode(full[:5], "accumulate_subsample", c, seed=7)) == ids(full[:5])  # under budget: all of it
