"""Detector-guided resampling (``detector_resample``): AUROC, weights, the one-model Binoculars score, a real chain.

    .venv/bin/python -m pytest -q tests/test_detector.py
"""

from __future__ import annotations

import json
import math
import statistics

import pytest

from madbench.data.corpus import HUMAN, MODEL, Doc
from madbench.errors import MadbenchError
from madbench.mitigations import MitigationContext, build_mitigations
from madbench.mitigations.detector import auroc, drayson_draw, human_probability, importance_weights

from conftest import madbench, tiny_model


def test_auroc_known_answers():
    assert auroc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auroc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auroc([1, 1, 1, 1], [True, False, True, False]) == 0.5  # ties count half
    assert auroc([3, 1, 2, 0], [True, True, False, False]) == 0.75  # 3 of 4 (synthetic, human) pairs ordered
    assert auroc([1, 2], [True, True]) is None  # one kind only: undefined, recorded as None


def test_importance_weights_are_the_human_probability_to_the_bias():
    p = human_probability([1.0, 2.0, 3.0])  # z = -1, 0, 1
    assert p == pytest.approx([1 / (1 + math.exp(1)), 0.5, 1 / (1 + math.exp(-1))])
    assert importance_weights([1.0, 2.0, 3.0], bias=10) == pytest.approx([(q / p[2]) ** 10 for q in p])
    assert importance_weights([5.0, 5.0], 10) == [1.0, 1.0]
    assert importance_weights([1.0, 3.0], 0.0) == [1.0, 1.0]  # bias 0: uniform
    assert importance_weights([1.0, float("inf"), 3.0], 1.0)[1] == importance_weights([1.0, float("inf"), 3.0], 1.0)[0]


def test_drayson_draw_upsamples_without_replacement_and_caps_copies():
    """Real binoculars-like scores of 32 documents, the paper's defaults: 48 draws, none more than 3 copies."""
    scores = [0.9 + 0.02 * i for i in range(16)] + [1.2 + 0.03 * i for i in range(16)]
    weights = importance_weights(scores, 10)
    drawn = drayson_draw(weights, 1.5, 3, "seed")
    counts = {i: drawn.count(i) for i in set(drawn)}
    assert len(drawn) == 48 and max(counts.values()) == 3  # the cap binds: the most human-like are taken 3 times
    assert sum(c == 3 for c in counts.values()) >= 10
    # without replacement from 3 copies each: a quota of all 96 copies takes every document exactly 3 times
    assert sorted(drayson_draw(weights, 3, 3, "seed")) == sorted(list(range(32)) * 3)
    # the same seed draws the same mix; another draws another
    assert drawn == drayson_draw(weights, 1.5, 3, "seed") != drayson_draw(weights, 1.5, 3, "other")


def fake_ctx(score_of):
    """A context whose detector sees the hand-made NLL/entropy ratios in ``score_of`` (id -> ratio)."""
    ctx = MitigationContext(3, 0, [])
    by_text = {}
    ctx.score_entropy = lambda texts, which="current": [(by_text[t], 1.0) for t in texts]
    return ctx, by_text


def test_resampling_up_weights_human_like_documents_and_records_the_detector():
    docs = [Doc(f"h{i}", f"human {i}", HUMAN) for i in range(50)] + [Doc(f"g{i}", f"model {i}", MODEL, 2) for i in range(50)]
    ctx, by_text = fake_ctx(None)
    for d in docs:  # human text scores 1.3, the model's own 0.9 (the detector separates them perfectly)
        by_text[d.text] = 1.3 if d.is_human else 0.9
    m = build_mitigations(["detector_resample"], {})[0]
    out, stats = m.transform_mix(docs, ctx)
    assert len(out) == stats["drawn_docs"] == 150 and stats["mix_docs"] == 100  # upsampled 1.5x
    assert stats["auroc"] == 1.0 and stats["real_share_before"] == 0.5
    # bias 10 on P(human) = sigmoid(+-1): a human copy weighs (0.731 / 0.269) ** 10 = 22,000 times a synthetic one,
    # so the 150 draws take all 150 human copies (50 documents x 3) first
    assert stats["real_share_after"] == 1.0 and stats["distinct_docs"] == 50 and stats["max_copies_drawn"] == 3
    assert stats["real_share_after"] == round(sum(d.is_human for d in out) / len(out), 4)
    assert stats["mean_score_human"] == 1.3 and stats["mean_score_synthetic"] == 0.9
    # bias 0: uniform draws without replacement, the same real share in expectation
    flat = build_mitigations(["detector_resample"], {"detector_resample": {"bias": 0}})[0]
    _, s0 = flat.transform_mix(docs, ctx)
    assert 0.35 <= s0["real_share_after"] <= 0.65 and s0["effective_sample_share"] == 1.0
    # a detector that is wrong the other way round down-weights the human documents, and says so
    for d in docs:
        by_text[d.text] = 0.9 if d.is_human else 1.3
    _, bad = m.transform_mix(docs, ctx)
    assert bad["auroc"] == 0.0 and bad["real_share_after"] == 0.0
    # the same seed and generation draw the same mix
    assert [d.id for d in m.transform_mix(docs, ctx)[0]] == [d.id for d in m.transform_mix(docs, ctx)[0]]


def test_bad_parameters_fail_with_one_line():
    with pytest.raises(MadbenchError, match="bias must be a number >= 0"):
        build_mitigations(["detector_resample"], {"detector_resample": {"bias": -1}})
    with pytest.raises(MadbenchError, match="max_copies must be an integer, got 1.5"):
        build_mitigations(["detector_resample"], {"detector_resample": {"max_copies": 1.5}})
    with pytest.raises(MadbenchError, match="max_copies must be an integer >= 1, got 0"):
        build_mitigations(["detector_resample"], {"detector_resample": {"max_copies": 0}})
    with pytest.raises(MadbenchError, match=r"upsample = 4 must be in \(0, max_copies = 3\]"):
        build_mitigations(["detector_resample"], {"detector_resample": {"upsample": 4}})
    with pytest.raises(MadbenchError, match="scorer must be one of binoculars, ratio"):
        build_mitigations(["detector_resample"], {"detector_resample": {"scorer": "roberta"}})
    with pytest.raises(MadbenchError, match="did you mean 'upsample'"):
        build_mitigations(["detector_resample"], {"detector_resample": {"upsampel": 1}})


@pytest.fixture(scope="module")
def tiny(madbench_cache):
    return tiny_model("sampling.top_p=1.0", "sampling.max_new_tokens=48")


def test_binoculars_score_of_a_models_own_text_is_one_at_temperature_one(tiny):
    """E[NLL] of a token sampled from p is the entropy of p, so the model's own T=1 text scores about 1;
    sharper sampling (T=0.5) makes its text more probable than the model's entropy, below 1."""
    import dataclasses

    from madbench.generation.sampling import generate, make_prompts
    from madbench.metrics.perplexity import per_text_nll, per_text_nll_entropy

    cfg, split, tokenizer, model = tiny
    prompts = make_prompts(cfg, split.pool, 32, 0, 1)

    def ratio(temperature):
        c = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, temperature=temperature))
        texts = [s.continuation for s in generate(model, tokenizer, prompts, c, seed=7)]
        rows = per_text_nll_entropy(model, tokenizer, texts)
        assert [r[0] for r in rows] == pytest.approx(per_text_nll(model, tokenizer, texts), rel=1e-5)
        return statistics.fmean(nll / ent for nll, ent in rows)

    own = ratio(1.0)
    # the continuation is scored without the prompt it was drawn after, so allow a little on either side of 1
    assert 0.9 <= own <= 1.1, own
    assert ratio(0.5) < own - 0.1


@pytest.mark.slow
def test_a_chain_records_the_detector_every_generation(tmp_path):
    out = tmp_path / "run"
    madbench("run", "--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity]", "loop.regimes=[fresh_data]",
             "loop.generations=2", "loop.mitigations=[detector_resample]", "--output-dir", out, check=True)
    chain = json.loads((out / "results.json").read_text())["chains"][0]
    gens = chain["generations"]
    for g in gens[1:]:
        stats = g["mitigations"]["mix"]["detector_resample"]
        # Drayson's draw: 24 documents upsampled 1.5x without replacement, none more than 3 times
        assert stats["mix_docs"] == 24 and stats["drawn_docs"] == g["train_docs"] == 36 and stats["real_share_before"] == 0.5
        assert 0.0 <= stats["auroc"] <= 1.0 and 12 <= stats["distinct_docs"] <= 24 and stats["max_copies_drawn"] <= 3
        manifest = json.loads((out / "chains" / chain["id"] / f"gen_{g['generation']:03d}" / "mix.json").read_text())
        share = sum(d["source"] == "real" for d in manifest["documents"]) / len(manifest["documents"])
        assert round(share, 4) == stats["real_share_after"]  # the recorded share is the mix it trained on


def test_drayson_draw_on_real_scores_of_the_tiny_model(tiny):
    """Binoculars scores of 16 real passages and 16 of the model's own samples: 48 draws, each document at most
    3 times; a quota of every copy takes each document exactly 3 times (no replacement)."""
    from madbench.generation.sampling import generate, make_prompts
    from madbench.metrics.perplexity import per_text_nll_entropy

    cfg, split, tokenizer, model = tiny
    human = [d.text for d in split.pool[:16]]
    samples = [c.continuation for c in generate(model, tokenizer, make_prompts(cfg, split.pool, 16, 0, 1), cfg, seed=3)]
    scores = [nll / ent for nll, ent in per_text_nll_entropy(model, tokenizer, human + samples)]
    weights = importance_weights(scores, 10)
    drawn = drayson_draw(weights, 1.5, 3, "real")
    copies = [drawn.count(i) for i in range(32)]
    assert len(drawn) == 48 and max(copies) <= 3 and 16 <= len(set(drawn)) <= 32
    assert copies.count(3) >= 8  # bias 10 concentrates the draw: the cap binds for the highest-scored documents
    assert sorted(drayson_draw(weights, 3, 3, "real")) == sorted(list(range(32)) * 3)


def test_uniform_resample_is_the_same_draw_with_uniform_weights():
    """The control arm: the draw's size and copy cap, and every document equally likely (frequencies over many draws)."""
    from collections import Counter

    docs = [Doc(f"h{i}", f"human {i}", HUMAN) for i in range(20)] + [Doc(f"g{i}", f"model {i}", MODEL, 2) for i in range(20)]
    m = build_mitigations(["uniform_resample"], {})[0]
    counts, reps = Counter(), 400
    for g in range(reps):
        out, stats = m.transform_mix(docs, MitigationContext(3, g, []))
        assert len(out) == stats["drawn_docs"] == 60 and stats["max_copies_drawn"] <= 3  # 1.5 N, at most 3 copies
        counts.update(d.id for d in out)
    expected = reps * 60 / 40  # 600 copies of each document over 400 draws
    assert all(abs(c - expected) < 5 * (reps * 1.5 * (1 - 1.5 / 3)) ** 0.5 for c in counts.values())  # 5 sigma
    human = sum(c for k, c in counts.items() if k.startswith("h")) / (reps * 60)
    assert abs(human - 0.5) < 0.02
    # and it is not detector_resample with its default bias: that one, on these scores, draws nearly only human text
    ctx, by_text = fake_ctx(None)
    for d in docs:
        by_text[d.text] = 1.3 if d.is_human else 0.9
    _, detected = build_mitigations(["detector_resample"], {})[0].transform_mix(docs, ctx)
    assert detected["real_share_after"] > 0.9
    with pytest.raises(MadbenchError, match="uniform_resample.upsample = 4 must be a number in"):
        build_mitigations(["uniform_resample"], {"uniform_resample": {"upsample": 4}})
    with pytest.raises(MadbenchError, match="uniform_resample.max_copies must be an integer >= 1"):
        build_mitigations(["uniform_resample"], {"uniform_resample": {"max_copies": 0}})
