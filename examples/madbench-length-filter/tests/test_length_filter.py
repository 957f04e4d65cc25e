"""The plug-in's own tests: its contract with madbench and its filter, on real Docs.

    pip install -e examples/madbench-length-filter && pytest examples/madbench-length-filter
"""

from __future__ import annotations

from importlib import metadata

import pytest

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.plugins import check_entry
from madbench_length_filter import LengthFilter


def docs(*lengths):
    return [Doc(f"g001-{i:05d}", " ".join(["word"] * n)) for i, n in enumerate(lengths)]


def test_it_keeps_the_band_in_sampling_order_within_the_budget():
    f = LengthFilter(min_words=3, max_words=5, oversample=1.25)
    kept, stats = f.filter_samples(docs(1, 4, 9, 3, 5, 2, 4, 6, 5, 4), ctx=None)
    assert [d.id for d in kept] == ["g001-00001", "g001-00003", "g001-00004", "g001-00006", "g001-00008", "g001-00009"]
    assert stats["too_short"] == 2 and stats["too_long"] == 2 and stats["in_band"] == 6


def test_the_budget_caps_what_is_kept():
    kept, stats = LengthFilter(min_words=0, oversample=2.0).filter_samples(docs(*[4] * 10), ctx=None)
    assert len(kept) == 5 and stats["dropped"] == 5


def test_bad_params_fail_with_the_parameter_named():
    with pytest.raises(MadbenchError, match="max_words"):
        LengthFilter(min_words=10, max_words=5)
    with pytest.raises(MadbenchError, match="unknown parameter 'min_word'"):
        LengthFilter(min_word=3)


def test_it_meets_madbenchs_mitigation_contract_and_is_declared_as_an_entry_point():
    check_entry("mitigations", "length_filter", LengthFilter)
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="madbench.mitigations")}
    assert eps.get("length_filter") == "madbench_length_filter:LengthFilter"
