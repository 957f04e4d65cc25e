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
from madbench.mitigations.detector import auroc, importance_weights

from conftest import madbench, tiny_model


def test_auroc_known_answers():
    assert auroc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auroc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auroc([1, 1, 1, 1], [True, False, True, False]) == 0.5  # ties count half
    assert auroc([3, 1, 2, 0], [True, True, False, False]) == 0.75  # 3 of 4 (synthetic, human) pairs ordered
    assert auroc([1, 2], [True, True]) is None  # one kind only: undefined, recorded as None


def test_importance_weights_are_exp_of_the_standardised_score():
    w = importance_weights([1.0, 2.0, 3.0], strength=1.0)
    assert w == pytest.approx([math.exp(-1), 1.0, math.exp(1)])
    assert importance_weights([5.0, 5.0], 2.0) == [1.0, 1.0]
    assert importance_weights([1.0, 3.0], 0.0) == [1.0, 1.0]
    assert importance_weights([1.0, float("inf"), 3.0], 1.0)[1] == importance_weights([1.0, float("inf"), 3.0], 1.0)[0]


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
    assert len(out) == len(docs) and stats["mix_docs"] == 100
    assert stats["auroc"] == 1.0 and stats["real_share_before"] == 0.5
    # z = +-1 (sample std of two equal halves is ~1.005): human weight e / (e + 1/e) = 0.88 of the draws, expected
    assert 0.8 <= stats["real_share_after"] <= 0.95
    assert stats["real_share_after"] == round(sum(d.is_human for d in out) / len(out), 4)
    assert stats["mean_score_human"] == 1.3 and stats["mean_score_synthetic"] == 0.9
    # strength 0: uniform draws, the same real share in expectation
    flat = build_mitigations(["detector_resample"], {"detector_resample": {"strength": 0}})[0]
    _, s0 = flat.transform_mix(docs, ctx)
    assert 0.35 <= s0["real_share_after"] <= 0.65 and s0["effective_sample_share"] == 1.0
    # a detector that is wrong the other way round down-weights the human documents, and says so
    for d in docs:
        by_text[d.text] = 0.9 if d.is_human else 1.3
    _, bad = m.transform_mix(docs, ctx)
    assert bad["auroc"] == 0.0 and bad["real_share_after"] < 0.2
    # the same seed and generation draw the same mix
    assert [d.id for d in m.transform_mix(docs, ctx)[0]] == [d.id for d in m.transform_mix(docs, ctx)[0]]


def test_bad_parameters_fail_with_one_line():
    with pytest.raises(MadbenchError, match="strength must be a number >= 0"):
        build_mitigations(["detector_resample"], {"detector_resample": {"strength": -1}})
    with pytest.raises(MadbenchError, match="scorer must be one of binoculars, ratio"):
        build_mitigations(["detector_resample"], {"detector_resample": {"scorer": "roberta"}})
    with pytest.raises(MadbenchError, match="did you mean 'strength'"):
        build_mitigations(["detector_resample"], {"detector_resample": {"strenght": 1}})


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
        assert stats["mix_docs"] == g["train_docs"] == 24 and stats["real_share_before"] == 0.5
        assert 0.0 <= stats["auroc"] <= 1.0 and 1 <= stats["distinct_docs"] <= 24
        manifest = json.loads((out / "chains" / chain["id"] / f"gen_{g['generation']:03d}" / "mix.json").read_text())
        share = sum(d["source"] == "real" for d in manifest["documents"]) / len(manifest["documents"])
        assert round(share, 4) == stats["real_share_after"]  # the recorded share is the mix it trained on
