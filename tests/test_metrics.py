"""The metric panel, each metric checked against an independent computation.

    .venv/bin/python -m pytest -q tests/test_metrics.py
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections import Counter

import numpy as np
import pytest

from madbench.config.run_config import EvalConfig
from madbench.errors import MadbenchError
from madbench.metrics import METRICS, MetricContext, MetricSpec, compute_metrics, evaluate_module_path, metric_info, names_needing, spec
from madbench.metrics.lexical import words
from madbench.metrics.semantic import mean_pairwise_cosine_distance, vendi_score
from madbench.metrics.shift import frechet_distance, mauve_score

PANEL = [m for m in EvalConfig().metrics if m != "perplexity"]


def run(name, samples, human=()):
    return compute_metrics([name], MetricContext(samples=list(samples), human=list(human)))[name]


def test_every_panel_metric_is_registered_with_a_direction_and_needs():
    for name in PANEL:
        s = spec(name)
        assert s.needs in ("samples", "human", "reference")  # reference: the generation-0 panel (metrics/tail.py)
        assert s.higher_is_better in (True, False, None) and s.fn.__doc__ and s.fn is METRICS.get(name)
        assert s.description == s.fn.__doc__.strip().splitlines()[0]


def test_a_metric_is_a_frozen_spec_read_through_one_accessor():
    s = spec("perplexity")
    assert isinstance(s, MetricSpec) and (s.name, s.higher_is_better, s.needs) == ("perplexity", False, "model")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.needs = "samples"
    assert spec("distinct_2").higher_is_better is True and spec("mauve").needs == "human"
    names = ["mauve", "distinct_2", "perplexity", "tail_ppl_p95", "self_bleu"]
    assert names_needing(names, "samples") == ["distinct_2", "self_bleu"]  # in the order given
    assert names_needing(names, ("model", "human")) == ["mauve", "perplexity"]
    assert names_needing(names, "reference") == ["tail_ppl_p95"]
    assert metric_info("distinct_2") == {"name": "distinct_2", "higher_is_better": True, "needs": "samples",
                                         "description": spec("distinct_2").description}
    with pytest.raises(MadbenchError, match="unknown metric 'perplexty'; did you mean 'perplexity'"):
        spec("perplexty")
    with pytest.raises(MadbenchError, match="needs must be"):
        MetricSpec("x", len, None, "everything")


def test_distinct_n_and_entropy_by_hand():
    texts = ["a b a b", "a c"]  # bigrams: ab ba ab | ac -> 3 unique of 4
    assert run("distinct_1", texts) == pytest.approx(3 / 6)
    assert run("distinct_2", texts) == pytest.approx(3 / 4)
    assert run("distinct_4", ["a b c d e"]) == pytest.approx(1.0)
    # unigram counts a:3 b:2 c:1 of 6
    expected = -sum(p * math.log2(p) for p in (3 / 6, 2 / 6, 1 / 6))
    assert run("unigram_entropy", texts) == pytest.approx(expected)
    assert run("unigram_entropy", ["x x x x"]) == pytest.approx(0.0)


def test_zipf_exponent_recovers_a_power_law():
    # frequencies 60/r: an exact Zipf law with exponent 1; 60/r^2-ish: steeper
    text = " ".join(f"w{r} " * (60 // r) for r in (1, 2, 3, 4, 5, 6))
    assert run("zipf_exponent", [text]) == pytest.approx(1.0, abs=1e-9)
    steep = " ".join(f"w{r} " * (3600 // r ** 2) for r in (1, 2, 3, 4, 5, 6))
    assert run("zipf_exponent", [steep]) == pytest.approx(2.0, abs=1e-9)
    assert run("zipf_exponent", ["same same"]) is None


def test_compression_ratio_is_raw_over_zlib_and_grows_with_repetition():
    texts = ["the cat sat on the mat", "a dog ran in the park today"]
    raw = "\n".join(texts).encode()
    assert run("compression_ratio", texts) == pytest.approx(len(raw) / len(zlib.compress(raw, 9)))
    looping = ["the cat sat on the mat " * 20] * 2
    assert run("compression_ratio", looping) > 3 * run("compression_ratio", texts)


def test_self_bleu_matches_nltk():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    texts = ["the quick brown fox jumps over the lazy dog today",
             "the quick brown cat jumps over the lazy dog again",
             "a slow green turtle walks under the busy bridge now",
             "the lazy dog sleeps while the quick fox jumps away"]
    toks = [words(t) for t in texts]
    smooth = SmoothingFunction().method1
    expected = np.mean([sentence_bleu(toks[:i] + toks[i + 1:], h, smoothing_function=smooth) for i, h in enumerate(toks)])
    assert run("self_bleu", texts) == pytest.approx(expected, abs=1e-6)
    assert run("self_bleu", [texts[0]] * 3) == pytest.approx(1.0)
    assert run("self_bleu", texts[:1]) is None


def test_self_bleu_pool_scores_any_subset_as_sacrebleu_does():
    """SelfBleuPool (n-grams tabulated once; the half-sample interval re-scores subsets) against sacrebleu's own
    sentence_score with the subset's other texts as references, on real KJV passages with an empty and a copy."""
    from sacrebleu.metrics import BLEU

    from madbench.data.corpus import kjv_texts, passages
    from madbench.metrics.lexical import words
    from madbench.metrics.repetition import SelfBleuPool

    texts = passages(kjv_texts(), 48)[100:124]
    texts[3], texts[5] = "", texts[6]
    tok = [" ".join(words(t)) for t in texts]
    bleu = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.1, effective_order=True)
    pool = SelfBleuPool(texts)
    for idx in (list(range(24)), [0, 3, 5, 6, 9, 17, 20]):
        expected = [bleu.sentence_score(tok[i], [tok[j] for j in idx if j != i]).score / 100 for i in idx if tok[i]]
        assert pool.scores(idx) == pytest.approx(expected, abs=1e-12)


def test_repetition_and_duplicates_by_hand():
    # 4-grams of "a b c d a b c d": 5, of which 'a b c d' repeats once -> 1/5; "x y z w v": 0
    assert run("repetition_4gram", ["a b c d a b c d", "x y z w v"]) == pytest.approx((1 / 5 + 0) / 2)
    assert run("duplicate_rate", ["Hello  world", "hello world", "other", "other", "third"]) == pytest.approx(2 / 5)
    assert run("duplicate_rate", ["a", "b"]) == 0.0


def _mtld_by_hand(tokens, threshold=0.72):
    def one_way(seq):
        factors, types, count, ttr = 0.0, set(), 0, 1.0
        for tok in seq:
            count += 1
            types.add(tok)
            ttr = len(types) / count
            if ttr <= threshold:
                factors, types, count = factors + 1, set(), 0
        if count:
            factors += (1 - ttr) / (1 - threshold)
        return len(seq) / factors

    return (one_way(tokens) + one_way(tokens[::-1])) / 2


def test_mtld_and_hdd_against_hand_computation():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    samples = [" ".join(rng.choice(vocab, size=30)) + " ." for _ in range(4)]  # punctuation is dropped
    tokens = [w for s in samples for w in s.split() if w != "."]
    assert run("mtld", samples) == pytest.approx(_mtld_by_hand(tokens))
    n, draws = len(tokens), 42
    expected_hdd = sum((1 - math.comb(n - f, draws) / math.comb(n, draws)) / draws for f in Counter(tokens).values())
    assert run("hdd", samples) == pytest.approx(expected_hdd)
    assert run("hdd", ["too short"]) is None
    varied = [" ".join(vocab)]
    assert run("mtld", varied) > run("mtld", [" ".join(vocab[:4] * 10)])


def test_vendi_and_pairwise_distance_on_known_embeddings():
    n = 6
    same = np.tile(np.array([[0.6, 0.8, 0.0]]), (n, 1))
    assert vendi_score(same) == pytest.approx(1.0)
    assert vendi_score(np.eye(n)) == pytest.approx(float(n))
    assert mean_pairwise_cosine_distance(same) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_cosine_distance(np.eye(n)) == pytest.approx(1.0)
    two = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # two clusters of two -> Vendi 2
    assert vendi_score(two) == pytest.approx(2.0)


def test_frechet_distance_matches_scipy_sqrtm_and_grows_with_shift():
    from scipy import linalg

    rng = np.random.default_rng(1)
    p = rng.normal(size=(300, 5))
    q = rng.normal(size=(400, 5)) @ np.diag([1.0, 2.0, 0.5, 1.0, 1.5]) + 0.3
    mu_p, mu_q, sp, sq = p.mean(0), q.mean(0), np.cov(p, rowvar=False), np.cov(q, rowvar=False)
    expected = ((mu_p - mu_q) ** 2).sum() + np.trace(sp + sq - 2 * linalg.sqrtm(sp @ sq).real)
    assert frechet_distance(p, q) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(p, p) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(p, p + 0.5) < frechet_distance(p, p + 1.0) < frechet_distance(p, p + 2.0)


def test_mauve_is_high_for_the_same_distribution_and_low_for_a_shifted_one():
    rng = np.random.default_rng(2)
    p, q = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    far = rng.normal(size=(60, 8)) + 4.0
    assert mauve_score(p, q) > 0.8
    assert mauve_score(far, q) < 0.3


def test_semantic_metrics_on_real_embeddings():
    varied = ["The shepherd led his flock across the hills at dawn.",
              "Stock markets fell sharply after the interest rate decision.",
              "Add two cups of flour and stir the batter until smooth.",
              "The striker scored twice in the second half of the match."]
    dull = ["The shepherd led his flock across the hills."] * 4
    assert run("vendi_score", dull) == pytest.approx(1.0, abs=1e-4)
    assert run("vendi_score", varied) > 3.0
    assert run("pairwise_cosine_distance", varied) > run("pairwise_cosine_distance", dull) + 0.5
    near = run("frechet_embedding_distance", varied, varied)
    assert near == pytest.approx(0.0, abs=1e-6)
    assert run("frechet_embedding_distance", dull, varied) > near + 0.1


def test_evaluate_load_on_the_local_module_path():
    import evaluate

    path = evaluate_module_path("madbench_diversity")
    module = evaluate.load(path)
    texts = ["the cat sat on the mat", "the dog sat on the log", "a bird flew over the house"]
    out = module.compute(predictions=texts, metrics=["distinct_2", "self_bleu"])
    assert out == pytest.approx(compute_metrics(["distinct_2", "self_bleu"], MetricContext(samples=texts, human=[])))
    from madbench.errors import MadbenchError

    with pytest.raises(MadbenchError, match="did you mean 'madbench_shift'"):
        evaluate_module_path("madbench_shfit")


def test_smoke_run_results_carry_the_panel(smoke_run):
    data = json.loads((smoke_run / "results.json").read_text())
    gens = [g for c in data["chains"] for g in c["generations"]]
    assert gens
    for key in PANEL:
        assert all(key in g["metrics"] for g in gens), key
        assert data["metrics_info"][key]["higher_is_better"] == spec(key).higher_is_better
    assert all(g["metrics"]["vendi_score"] >= 1.0 - 1e-6 for g in gens)
