"""Unit behaviour of each mitigation, on the real tiny model and real KJV passages.

    .venv/bin/python -m pytest -q tests/test_mitigations.py
"""

from __future__ import annotations


import pytest

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.mitigations import MITIGATIONS, Mitigation, MitigationContext, build_mitigations, mitigation_card


def scorer(model, tokenizer):
    from madbench.metrics.perplexity import per_text_nll

    return lambda texts, which="current": per_text_nll(model, tokenizer, texts, 16)


def test_every_mitigation_has_a_card_and_a_known_target_metric():
    from madbench.metrics import METRICS

    names = MITIGATIONS.names()
    for expected in ("mix_real", "accumulate", "verifier_filter", "surprise_filter", "dedup", "watermark_filter"):
        assert expected in names
    for name in names:
        card = mitigation_card(name)
        assert card["card"] and card["paper"], name
        assert card["target_metric"] in METRICS, name
        assert issubclass(MITIGATIONS.get(name), Mitigation)


def test_bad_parameters_fail_with_one_line():
    with pytest.raises(MadbenchError, match="did you mean 'keep_fraction'"):
        build_mitigations(["verifier_filter"], {"verifier_filter": {"keep_fractio": 0.5}})
    with pytest.raises(MadbenchError, match="keep_fraction must be in"):
        build_mitigations(["verifier_filter"], {"verifier_filter": {"keep_fraction": 0}})
    with pytest.raises(MadbenchError, match="action must be one of"):
        build_mitigations(["watermark_filter"], {"watermark_filter": {"action": "burn"}})
    # a value of the wrong kind is one line, not a TypeError from inside check()
    with pytest.raises(MadbenchError, match=r"dedup.threshold must be a number, got \[1, 2\]"):
        build_mitigations(["dedup"], {"dedup": {"threshold": [1, 2]}})
    with pytest.raises(MadbenchError, match="accumulate.keep_real must be true or false, got 'yes'"):
        build_mitigations(["accumulate"], {"accumulate": {"keep_real": "yes"}})
    with pytest.raises(MadbenchError, match="dedup.shingle must be an integer, got 2.5"):
        build_mitigations(["dedup"], {"dedup": {"shingle": 2.5}})
    # numbers written as strings (a dotted override '1e-3') and integers for a float parameter are read as numbers
    assert build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": "1e-3"}})[0].p["gamma"] == 0.001
    assert build_mitigations(["truncated_ce"], {"truncated_ce": {"gamma": 1}})[0].p["gamma"] == 1


def test_dedup_removes_exact_and_near_duplicates_only(tiny):
    _, split, _, _ = tiny
    base = [d.text for d in split.pool[:20]]
    near = base[3].split()
    near[len(near) // 2] = "zebra"  # one word changed: Jaccard of 3-gram shingles stays high
    texts = base + [base[5], " ".join(near), base[7].upper()]
    docs = [Doc(f"g001-{i:05d}", t) for i, t in enumerate(texts)]
    m = build_mitigations(["dedup"], {"dedup": {"oversample": 1.0}})[0]
    kept, stats = m.filter_samples(docs, MitigationContext(1, 0, split.pool))
    assert [d.id for d in kept] == [d.id for d in docs[:20]]
    assert stats["exact_duplicates"] == 2 and stats["near_duplicates"] == 1 and stats["dropped"] == 3
    # the budget: oversample 1.25 keeps at most len/1.25 unique samples
    m = build_mitigations(["dedup"], {})[0]
    kept, stats = m.filter_samples(docs[:20], MitigationContext(1, 0, split.pool))
    assert len(kept) == 16 and stats["surplus_dropped"] == 4


@pytest.mark.parametrize("name,lowest", [("verifier_filter", True), ("surprise_filter", False)])
def test_score_filters_keep_the_right_fraction(tiny, name, lowest):
    _, split, tokenizer, model = tiny
    docs = [Doc(f"g001-{i:05d}", d.text) for i, d in enumerate(split.pool[:12])]
    docs.append(Doc("g001-00012", "the the the the the the the the the the"))
    ctx = MitigationContext(1, 0, split.pool, tokenizer, score=scorer(model, tokenizer))
    m = build_mitigations([name], {name: {"keep_fraction": 0.25, "scorer": "current"}})[0]
    assert m.oversample() == pytest.approx(4.0)
    kept, stats = m.filter_samples(docs, ctx)
    nll = dict(zip((d.id for d in docs), ctx.score([d.text for d in docs])))
    ranked = sorted(nll, key=nll.get, reverse=not lowest)
    assert {d.id for d in kept} == set(ranked[:3])
    assert stats["kept"] == 3 and stats["dropped"] == 10
    worst_kept = max if lowest else min
    assert worst_kept(nll[d.id] for d in kept) == pytest.approx(stats["nll_kept"]["max" if lowest else "min"], abs=1e-3)


def test_watermark_detector_finds_watermarked_text_and_not_plain_text(tiny):
    from madbench.generation.sampling import generate

    cfg, split, tokenizer, model = tiny
    prompts = [" ".join(d.text.split()[:8]) for d in split.pool[:16]]
    ctx = MitigationContext(1, 0, split.pool, tokenizer)
    marked = build_mitigations(["watermark_filter"], {"watermark_filter": {"watermark_fraction": 1.0}})[0]
    wm = [c.continuation for c in generate(model, tokenizer, prompts, cfg, 1, marked.logits_processors(ctx))]
    plain = [c.continuation for c in generate(model, tokenizer, prompts, cfg, 1)]
    z_wm, z_plain = marked.detect(wm, tokenizer), marked.detect(plain, tokenizer)
    z_human = marked.detect([d.text for d in split.eval[:16]], tokenizer)
    assert sum(z_wm) / 16 > 4 and sum(z > 2 for z in z_wm) >= 12  # short samples (early EOS) score lower
    assert sum(z_plain) / 16 < 1.5 and sum(z_human) / 16 < 1.5
    # a different key does not see the watermark
    other = build_mitigations(["watermark_filter"], {"watermark_filter": {"key": 7}})[0]
    assert sum(other.detect(wm, tokenizer)) / 16 < 1.5


def test_watermark_filter_reports_precision_recall_on_a_mixed_mix(tiny):
    from madbench.generation.sampling import generate

    cfg, split, tokenizer, model = tiny
    ctx = MitigationContext(2, 0, split.pool, tokenizer)
    prompts = [" ".join(d.text.split()[:8]) for d in split.pool[:24]]
    recalls = []
    for seed in range(4):  # about 11 marked documents a seed: one seed's recall is a noisy number
        m = build_mitigations(["watermark_filter"], {"watermark_filter": {"watermark_fraction": 0.5}})[0]
        proc = m.logits_processors(ctx)
        texts = [c.continuation for c in generate(model, tokenizer, prompts, cfg, seed, proc)]
        docs = [Doc(f"g001-{i:05d}", t) for i, t in enumerate(texts)]
        _, sstats = m.filter_samples(docs, ctx)
        assert sstats["watermarked"] == proc[0].watermarked_rows  # the processor and the text agree on who is marked
        assert 0 < sstats["watermarked"] < 24
        mix = docs + split.pool[:8]  # some human text too
        new_mix, stats = m.transform_mix(mix, ctx)
        assert stats["watermarked"] == sstats["watermarked"]
        assert stats["precision"] >= 0.9
        assert len(new_mix) == len(mix) and stats["real_added"] == stats["dropped"] == stats["detected"]
        recalls.append(stats["recall"])
    assert sum(recalls) / len(recalls) >= 0.7, recalls
    dropped = build_mitigations(["watermark_filter"], {"watermark_filter": {"action": "drop"}})[0]
    fewer, s = dropped.transform_mix(mix, ctx)
    assert len(fewer) == len(mix) - s["detected"] and s["real_added"] == 0


def test_mix_real_and_accumulate_build_the_documented_mix(tiny):
    _, split, _, _ = tiny
    syn = {g: [Doc(f"g{g:03d}-{i:05d}", f"text {g} {i}") for i in range(10)] for g in range(3)}
    ctx = MitigationContext(3, 0, split.pool, history=syn, train_docs=6)
    mix, stats = build_mitigations(["mix_real"], {"mix_real": {"fraction": 0.3}})[0].transform_mix(syn[2], ctx)
    assert len(mix) == 10 and stats["real_added"] == 3 and sum(d.id.startswith("h") for d in mix) == 3
    mix, stats = build_mitigations(["accumulate"], {})[0].transform_mix(list(syn[2]), ctx)
    assert len(mix) == 6 + 30 and stats["real_docs"] == 6 and stats["synthetic_docs"] == 30
    assert len({d.id for d in mix}) == len(mix)
    off = build_mitigations(["mix_real"], {"mix_real": {"fraction": 0.0}})[0].transform_mix(syn[2], ctx)[0]
    assert off == syn[2]
    # the default mix_real (Shumailov et al.'s 10%): real pool documents replace the mix's tail, reproducibly per generation
    big = [Doc(f"g002-{i:05d}", f"text {i}") for i in range(40)]
    default = build_mitigations(["mix_real"], {})[0]
    mix, stats = default.transform_mix(big, ctx)
    pool_ids = {d.id for d in split.pool}
    real = [d for d in mix if d.id.startswith("h")]
    assert len(mix) == 40 and mix[:36] == big[:36] and len(real) == stats["real_added"] == 4
    assert {d.id for d in real} <= pool_ids and len({d.id for d in real}) == 4
    assert default.transform_mix(big, ctx)[0] == mix  # seeded: a resumed run rebuilds the same mix
    later = MitigationContext(4, 0, split.pool, history=ctx.history, train_docs=ctx.train_docs)
    assert [d.id for d in default.transform_mix(big, later)[0][36:]] != [d.id for d in real]


def test_composed_filters_deliver_num_samples_or_fail_clearly(tiny):
    """Defect: dedup+verifier_filter sampled max(oversample) x 64 and trained on 32 documents."""
    from madbench.mitigations.compose import compose_samples

    cfg, split, tokenizer, model = tiny
    texts = [d.text for d in split.pool + split.fresh]
    calls = []

    def draw(n, rnd):  # real passages, every third one a verbatim repeat of an earlier one
        calls.append(n)
        start = sum(calls[:-1])
        return [Doc(f"g001-{start + i:05d}", texts[start + i - 1] if (start + i) % 3 == 2 else texts[start + i])
                for i in range(n)]

    ctx = MitigationContext(generation=1, seed=0, pool=split.pool, tokenizer=tokenizer, score=scorer(model, tokenizer))
    mits = build_mitigations(["dedup", "verifier_filter"], {})
    docs, kept, stats = compose_samples(draw, mits, ctx, target=24)
    assert len(kept) == 24 and len({d.text for d in kept}) == 24
    assert calls[0] == 60 and len(calls) >= 2  # 24 x 1.25 x 2, then a top-up: a third of the draws were duplicates
    assert stats["dedup"]["exact_duplicates"] > 0 and stats["verifier_filter"]["kept"] >= 24
    assert stats["dedup"]["kept"] + stats["dedup"]["dropped"] == len(docs) == stats["composition"]["sampled"]
    assert stats["composition"]["rounds"] == len(calls)

    same = lambda n, rnd: [Doc(f"g001-{rnd}-{i}", texts[0]) for i in range(n)]  # a fully collapsed sampler
    with pytest.raises(MadbenchError, match=r"mitigations dedup\+verifier_filter kept 1 of sampling.num_samples=24 .* in 3 rounds"):
        compose_samples(same, mits, ctx, target=24)  # the two sure top-ups added nothing: no fourth round

    calls.clear()  # a nearly collapsed sampler: one new passage per round keeps the search going past 3 rounds
    trickle = lambda n, rnd: [Doc(f"g001-{rnd}-{i}", texts[rnd] if i == 0 else texts[0]) for i in range(n)]  # noqa: E731
    docs, kept, stats = compose_samples(trickle, build_mitigations(["dedup"], {}), ctx, target=5)
    assert len({d.text for d in kept}) == 5 and stats["composition"]["rounds"] == 5


@pytest.mark.parametrize("prompt", ["real", "none"])
def test_watermark_decision_and_ground_truth_agree_for_every_prompt_mode(tiny, prompt):
    """Defect: with sampling.prompt=none every row was decided on the empty prompt (all or none marked)."""
    import dataclasses

    from madbench.generation.sampling import generate, make_prompts

    cfg, split, tokenizer, model = tiny
    cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, prompt=prompt))
    m = build_mitigations(["watermark_filter"], {"watermark_filter": {"watermark_fraction": 0.5}})[0]
    ctx = MitigationContext(1, 0, split.pool, tokenizer)
    proc = m.logits_processors(ctx)
    texts = [c.continuation for c in generate(model, tokenizer, make_prompts(cfg, split.pool, 24, 0, 1), cfg, 3, proc)]
    docs = [Doc(f"g001-{i:05d}", t) for i, t in enumerate(texts)]
    _, sstats = m.filter_samples(docs, ctx)
    assert 4 <= sstats["watermarked"] <= 20 and sstats["watermarked"] == proc[0].watermarked_rows
    assert sstats["mean_z_watermarked"] > 2.5 > sstats["mean_z_unwatermarked"]  # the marked rows are the watermarked ones
    _, stats = m.transform_mix(docs, ctx)
    assert stats["precision"] >= 0.9 and stats["recall"] >= 0.6
