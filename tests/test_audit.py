"""``madbench audit``: the machine-share estimate on known mixtures of the tiny model's own samples, and bad corpora.

    OMP_NUM_THREADS=1 python -m pytest -q tests/test_audit.py
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cli, one_line_error, tiny_model
from madbench.monitoring.audit import Detector, estimate_share


@pytest.fixture(scope="module")
def scored(madbench_cache):
    """Binoculars scores of 120 held-out human passages and 120 of the tiny model's own samples (the tiny preset's sampler)."""
    cfg, split, tokenizer, model = tiny_model("sampling.prompt=none", "data.doc_words=32", "sampling.max_new_tokens=48",
                                              "sampling.temperature=0.8", "sampling.top_p=0.9")
    detector = Detector(cfg, split, tokenizer, model)
    return detector.scores(detector.human()[:120]), detector.scores(detector.samples(120, seed=5))


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_estimate_on_a_known_mixture_lands_in_its_interval(scored, share):
    h, m = scored
    k = int(share * 60)
    # calibration on the first 60 of each kind; the mixture from the other 60, disjoint
    mixture = np.concatenate([h[60:120 - k], m[60:60 + k]])
    est = estimate_share(mixture, h[:60], m[:60])
    lo, hi = est["interval"]
    assert lo <= k / 60 <= hi, est
    assert abs(est["share"] - k / 60) < 0.2, est
    assert hi - lo < 0.6, est  # an interval that says something
    assert est["auroc"] > 0.8  # the tiny model tells its own samples from human text


def test_a_detector_without_power_gives_no_share():
    rng = np.random.default_rng(0)
    same = rng.normal(1.0, 0.1, 200)
    est = estimate_share(same[:50], same[50:120], same[120:], resamples=50)
    lo, hi = est["interval"]
    assert hi - lo > 0.5  # indistinguishable calibration sets: the interval says it does not know


def test_bad_corpora_get_one_line_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    one_line_error(cli("audit", tmp_path / "empty", "--output-dir", out), "holds no .txt, .jsonl or .json file")
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_text("in the beginning " * 30)
    one_line_error(cli("audit", tmp_path / "small", "--output-dir", out), "the audit needs at least 20")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.txt").write_bytes(bytes(range(256)) * 20)
    one_line_error(cli("audit", tmp_path / "bin", "--output-dir", out), "x.txt", "binary")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "a.txt").write_text("\n\n  \n")
    one_line_error(cli("audit", tmp_path / "blank", "--output-dir", out), "no text")
    one_line_error(cli("audit", tmp_path / "blank", "--doc-words", "2"), "--doc-words must be at least 8")
    assert not out.exists()
