"""``madbench audit``: the machine-share estimate on known mixtures of the tiny model's own samples, and bad corpora.

    OMP_NUM_THREADS=1 python -m pytest -q tests/test_audit.py
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cli, one_line_error, tiny_model
from madbench.monitoring.audit import Detector, estimate_share, fit_check, source_sight, verdict


@pytest.fixture(scope="module")
def scored(madbench_cache):
    """Binoculars scores of 120 held-out human passages and 120 of the tiny model's own samples (the tiny preset's sampler)."""
    cfg, split, tokenizer, model = tiny_model("sampling.prompt=none", "data.doc_words=32", "sampling.max_new_tokens=48",
                                              "sampling.temperature=0.8", "sampling.top_p=0.9")
    detector = Detector(cfg, split, tokenizer, model)
    return detector.scores(detector.human()[:120]), detector.scores(detector.samples(120, seed=5))


@pytest.fixture(scope="module")
def features(madbench_cache):
    """(score, NLL, entropy) of 120 human passages, 120 samples at the preset's sampler (T 0.8, top-p 0.9), 120 at
    pure sampling (T 1.0, top-p 1.0), and 60 passages of another human domain (Python's documentation)."""
    from madbench.data.corpus import load_texts, passages

    cfg, split, tokenizer, model = tiny_model("sampling.prompt=none", "data.doc_words=32", "sampling.max_new_tokens=48",
                                              "sampling.temperature=0.8", "sampling.top_p=0.9")
    det = Detector(cfg, split, tokenizer, model)
    pydoc = passages(load_texts("pydoc"), 32)[:60]
    return {"human": det.features(det.human()[:120]), "t08": det.features(det.samples(120, seed=5)),
            "t10": det.features(det.with_sampler(1.0, 1.0).samples(120, seed=6)), "pydoc": det.features(pydoc)}


def audit(corpus, human, sources):
    """What ``madbench audit`` decides: (estimate, fit, the reason it cannot tell or None)."""
    machine = np.concatenate(list(sources.values()))
    est = estimate_share(corpus[:, 0], human[:, 0], machine[:, 0], resamples=200)
    fit = fit_check(corpus, human, machine, est["share"], draws=100)
    return est, fit, verdict(est, fit, source_sight(human[:, 0], {k: v[:, 0] for k, v in sources.items()}))


@pytest.mark.parametrize("share", [0.0, 0.5, 0.9])
def test_a_mixture_from_the_calibrated_sampler_is_estimated_and_covered(features, share):
    f = features
    k = int(share * 60)
    corpus = np.concatenate([f["human"][60:120 - k], f["t08"][60:60 + k]])
    est, fit, why = audit(corpus, f["human"][:60], {"t08": f["t08"][:60]})
    assert why is None, why
    assert est["interval"][0] <= k / 60 <= est["interval"][1] and abs(est["share"] - k / 60) < 0.15, est


def test_pure_sampled_text_gets_cannot_tell_not_a_tight_zero(features):
    f = features
    corpus = np.concatenate([f["human"][60:72], f["t10"][60:108]])  # 80% written by the model at temperature 1.0
    # calibrated on the preset's sampler only, the one-model score reads it as human: the estimate is far off ...
    est, _, why = audit(corpus, f["human"][:60], {"t08": f["t08"][:60]})
    assert est["share"] < 0.3
    # ... which is why the audit calibrates on pure sampling too: the detector is seen to be blind to it
    est, _, why = audit(corpus, f["human"][:60], {"t08": f["t08"][:30], "t10": f["t10"][:30]})
    assert why is not None and why.startswith("the detector does not tell t10"), why


def test_human_text_of_another_domain_is_outside_the_calibration(features):
    f = features
    est, fit, why = audit(f["pydoc"], f["human"][:60], {"t08": f["t08"][:60]})
    assert not fit["fits"] and why is not None and "not a mix of the calibration sets" in why, (fit, est)


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


@pytest.mark.slow
def test_the_cli_says_cannot_tell_on_pure_sampled_text_and_names_no_threshold(tmp_path, madbench_cache):
    import json

    cfg, split, tokenizer, model = tiny_model("sampling.prompt=none", "data.doc_words=32", "sampling.max_new_tokens=48")
    texts = Detector(cfg, split, tokenizer, model).with_sampler(1.0, 1.0).samples(40, seed=9)
    corpus = tmp_path / "hot.txt"
    corpus.write_text("\n\n".join(texts))
    out = cli("audit", corpus, "--preset", "smoke", "--calibration", "40", "--output-dir", tmp_path / "o")
    assert out.returncode == 0, out.stderr
    assert "machine-written share: cannot tell: the detector does not tell smoke model at temperature 1" in out.stdout
    assert "threshold curve" not in out.stdout and "held there" not in out.stdout
    written = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert written["estimate"] is None and written["threshold_position"] is None and written["cannot_tell"]
