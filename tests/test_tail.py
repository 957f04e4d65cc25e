"""The generation-0 reference panel: tail_* metrics on hand-made values, and on a real run scored independently."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import madbench
from madbench.metrics import METRICS, MetricContext, compute_metrics
from madbench.metrics.tail import TAIL_METRICS, wasserstein_1


def ctx(values, g0):
    """A context whose per-sample log perplexities are given (the model is never called)."""
    c = MetricContext(samples=["x"] * len(values), human=[], cache={"g0_log_ppl": g0})
    c.cache["log_ppl"] = list(values)
    return c


def test_hand_made_distributions_give_known_answers():
    g0 = [math.log(p) for p in range(1, 101)]  # perplexities 1..100
    # a later generation: 10 samples far below generation 0's 5th percentile, 10 far above its 95th
    later = [math.log(0.5)] * 10 + [math.log(50)] * 80 + [math.log(1000)] * 10
    m = compute_metrics(TAIL_METRICS, ctx(later, g0))
    assert m["tail_below_g0_p05"] == pytest.approx(0.10)
    assert m["tail_above_g0_p95"] == pytest.approx(0.10)
    assert m["tail_ppl_median"] == pytest.approx(50.0)
    assert m["tail_ppl_p05"] == pytest.approx(0.5) and m["tail_ppl_p95"] == pytest.approx(1000.0, rel=1e-6)
    # generation 0 against itself: 5% in each tail (by construction of the percentiles), distance 0
    own = compute_metrics(TAIL_METRICS, ctx(g0, None))
    assert own["tail_w1_log_ppl"] == 0.0
    assert own["tail_below_g0_p05"] == pytest.approx(0.05) and own["tail_above_g0_p95"] == pytest.approx(0.05)
    assert own["tail_ppl_median"] == pytest.approx(math.sqrt(50 * 51))  # percentiles interpolate in log space


def test_wasserstein_matches_scipy_and_a_shift():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=37), rng.gamma(2.0, size=64)
    assert wasserstein_1(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    assert wasserstein_1(a, a + 0.75) == pytest.approx(0.75)  # a pure shift moves every quantile by the shift
    assert compute_metrics(["tail_w1_log_ppl"], ctx(list(a + 2.0), list(a)))["tail_w1_log_ppl"] == pytest.approx(2.0)


def test_directions_are_registered():
    info = {name: METRICS.spec(name).higher_is_better for name in TAIL_METRICS}
    assert info == {"tail_ppl_median": None, "tail_ppl_p05": True, "tail_ppl_p95": False, "tail_below_g0_p05": False,
                    "tail_above_g0_p95": False, "tail_w1_log_ppl": False}
    assert all(METRICS.spec(n).needs == "reference" for n in TAIL_METRICS)


@pytest.fixture(scope="module")
def tail_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tail") / "run"
    madbench("run", "--preset", "smoke", "loop.regimes=[fully_synthetic]", "loop.generations=1", "data.train_docs=16",
             "sampling.num_samples=16", "sampling.batch_size=16", "eval.tasks=[]",
             f"eval.metrics=[distinct_2,{','.join(TAIL_METRICS)},rare_token_mass,rare_token_mass_ratio]", "--output-dir", out,
             check=True)
    return out


@pytest.mark.slow
def test_real_run_scores_samples_with_generation_0_independently(tail_run):
    """reference_ppl.json equals per-sample perplexity recomputed with plain transformers + peft from disk."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = tail_run / "gen0" / "seed0" / "adapter"
    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter).eval()
    gen = tail_run / "chains" / "fully_synthetic-replace-s0" / "gen_001"
    texts = [json.loads(line)["text"] for line in (gen / "samples.jsonl").read_text().splitlines()][:16]
    texts = [t for t in texts if t]  # a continuation that ended at once (EOS first) has no perplexity: not scored
    expected = []
    with torch.no_grad():
        for text in texts:  # one text at a time, no padding: an independent implementation
            ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]])
            expected.append(float(model(input_ids=ids, labels=ids).loss))
    saved = json.loads((gen / "reference_ppl.json").read_text())["log_ppl"]
    assert saved == pytest.approx(expected, abs=1e-4)
    metrics = json.loads((gen / "metrics.json").read_text())
    assert metrics["tail_ppl_median"] == pytest.approx(math.exp(np.median(expected)), rel=1e-4)
    g0 = json.loads((tail_run / "chains" / "fully_synthetic-replace-s0" / "gen_000" / "metrics.json").read_text())
    assert g0["tail_w1_log_ppl"] == 0.0
    results = json.loads((tail_run / "results.json").read_text())
    assert results["metrics_info"]["tail_w1_log_ppl"]["higher_is_better"] is False
    assert len(results["chains"][0]["generations"][1]["reference_log_ppl"]) == len(texts)


@pytest.mark.slow
def test_report_draws_the_tail_density_figure(tail_run):
    proc = madbench("report", tail_run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = tail_run / "report" / "tail_density.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert "tail_density.png" in (tail_run / "report" / "report.md").read_text()


def test_rare_word_recall_by_hand():
    from madbench.metrics.rare import rare_types

    def name(prefix, i):
        return prefix + "".join(chr(97 + int(d)) for d in str(i))  # alphabetic word types

    common = " ".join(name("x", i) for i in range(1000))  # 1,000 types x 3: the most frequent
    middle = " ".join(name("y", i) for i in range(1000))  # 1,000 types x 2: rare (outside the top 1,000)
    human = [common, common, common, middle, middle, "apple banana cherry date"]
    rare = rare_types(human)
    assert len(rare) == 1004 and {"apple", "date", "ya"} <= rare and "xa" not in rare
    # on a fixed word budget (rarefaction): apple twice and banana once among 800 words, 400 drawn
    uses_two = ["apple apple banana " + "xb " * 797]
    got = compute_metrics(["rare_word_recall"], MetricContext(samples=uses_two, human=human))["rare_word_recall"]
    from scipy.stats import hypergeom

    seen = lambda c: 1 - hypergeom(800, c, 400).pmf(0)  # noqa: E731  (a type with c of 800 words, 400 drawn)
    assert got == pytest.approx((seen(2) + seen(1)) / 1004, rel=1e-9)
    # fewer words than the budget: undefined, not padded by repeating the samples
    assert compute_metrics(["rare_word_recall"], MetricContext(samples=["apple " * 399], human=human))["rare_word_recall"] is None
    # a small held-out text (under 2,000 types): the less frequent half of its types are rare
    assert rare_types(["a a a b b c d"]) == {"c", "d"}
    assert METRICS.spec("rare_word_recall").higher_is_better is True


def test_rare_token_ids_by_hand():
    from madbench.metrics.rare import rare_token_ids

    # targets (after BOS 0): token 1 x 8, token 2 x 1, token 3 x 1 -> token 1 covers 80%, 1+2 cover 90%
    assert rare_token_ids([[0, 1, 1, 1, 1, 2], [0, 1, 1, 1, 1, 3]]) == {3}
    assert rare_token_ids([[0, 1, 1, 1, 1, 2], [0, 1, 1, 1, 1, 3]], coverage=0.8) == {2, 3}


@pytest.mark.slow
def test_rare_token_mass_matches_an_independent_computation(tail_run):
    """rare_mass over the held-out text equals exp(-token loss) averaged over rare positions, one text at a time."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from madbench.metrics.rare import encode, rare_mass, rare_token_ids

    adapter = tail_run / "gen0" / "seed0" / "adapter"
    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter).eval()
    human = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void."]
    encoded = encode(tok, human)
    rare = rare_token_ids(encoded)
    expected = []
    with torch.no_grad():
        for ids in encoded:
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
            expected += [float(logp[i - 1, ids[i]].exp()) for i in range(1, len(ids)) if ids[i] in rare]
    assert rare and rare_mass(model, tok, encoded, rare, batch_size=2) == pytest.approx(sum(expected) / len(expected), rel=1e-4)
    chain = tail_run / "chains" / "fully_synthetic-replace-s0"
    g0 = json.loads((chain / "gen_000" / "metrics.json").read_text())
    assert g0["rare_token_mass_ratio"] == pytest.approx(1.0) and 0 < g0["rare_token_mass"] < 1
    g1 = json.loads((chain / "gen_001" / "metrics.json").read_text())
    assert g1["rare_token_mass_ratio"] == pytest.approx(g1["rare_token_mass"] / g0["rare_token_mass"], rel=1e-6)


@pytest.mark.slow
def test_rare_token_mass_reuses_the_perplexity_forward(tail_run):
    """The generation's model is run once over the held-out text: rare-token probabilities come from the
    perplexity metric's forward (length-sorted batches) and equal a forward of their own."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from madbench.metrics import MetricContext
    from madbench.metrics.perplexity import perplexity
    from madbench.metrics.rare import current_rare_probs, encode, rare_probs, rare_token_ids
    from madbench.models.scores import ScoreCache

    adapter = tail_run / "gen0" / "seed0" / "adapter"
    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter).eval()
    human = ["In the beginning God created the heaven and the earth.", "And God said, Let there be light: and there was light.",
             "And the evening and the morning were the first day.", "Jesus wept.",
             "And the earth was without form, and void; and darkness was upon the face of the deep."]
    ctx = MetricContext(samples=[], human=human, model=model, tokenizer=tok, batch_size=2, scores=ScoreCache())
    perplexity(ctx)
    encoded = encode(tok, human)
    rare = rare_token_ids(encoded, coverage=0.5)
    calls = []
    hook = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        reused = current_rare_probs(model, ctx, encoded, rare, ctx.scores)
        assert not calls  # no forward: read from the perplexity pass
        direct = rare_probs(model, tok, encoded, rare, batch_size=2)
        assert calls
    finally:
        hook.remove()
    assert sum(map(len, direct)) > 3 and [len(r) for r in reused] == [len(r) for r in direct]
    assert [p for r in reused for p in r] == pytest.approx([p for r in direct for p in r], rel=1e-5)
    other = MetricContext(samples=[], human=human[:2], model=model, tokenizer=tok, batch_size=2)
    assert current_rare_probs(model, other, encoded[:2], rare) == rare_probs(model, tok, encoded[:2], rare, 2)  # not remembered: computed


def test_tail_intervals_cover_with_generation_0_noise_short_check():
    """Coverage on a population with a known sampling distribution (log perplexities of generation 0 and of a
    later generation, 64 samples each): the truth is the mean over 300 independent draws of both. Holding
    generation 0 fixed, as before, gave 75% for tail_below_g0_p05 at two thirds of the true width."""
    from madbench.metrics import MetricContext
    from madbench.metrics.tail import tail_intervals

    rng = np.random.default_rng(5)
    names = ["tail_below_g0_p05", "tail_above_g0_p95", "tail_w1_log_ppl"]
    draw = lambda: (list(rng.normal(3.3, 0.5, 64)), list(rng.normal(3.5, 0.4, 64)))  # noqa: E731  (generation, g0)
    ctx = lambda v, r: MetricContext(samples=[], human=[], cache={"log_ppl": v, "g0_log_ppl": r})  # noqa: E731
    truth = np.array([[METRICS.get(n)(ctx(*draw())) for n in names] for _ in range(300)])
    target, true_width = truth.mean(axis=0), np.diff(np.percentile(truth, [2.5, 97.5], axis=0), axis=0)[0]
    hits, widths = np.zeros(len(names)), np.zeros(len(names))
    sets = 30
    for _ in range(sets):
        iv = tail_intervals(names, ctx(*draw()), resamples=100)
        for j, n in enumerate(names):
            hits[j] += iv[n][0] <= target[j] <= iv[n][1]
            widths[j] += (iv[n][1] - iv[n][0]) / sets
    assert (hits / sets >= 0.85).all(), dict(zip(names, hits / sets))
    assert ((widths / true_width > 0.8) & (widths / true_width < 1.25)).all(), dict(zip(names, widths / true_width))


def test_rare_word_recall_does_not_track_sample_length_on_real_passages():
    """64 KJV passages of 48 words against the same passages cut to their first 24: the old recall (on as many
    words as the human text, samples repeated) gave 0.25 against 0.15 here; on the fixed budget they agree."""
    from madbench.data.corpus import kjv_texts, passages

    pool = passages(kjv_texts(), 48)
    idx = np.random.default_rng(0).choice(len(pool), 64 * 4, replace=False)
    human = [pool[i] for i in idx[:64]]
    for k in (1, 2, 3):
        long = [pool[i] for i in idx[64 * k: 64 * (k + 1)]]
        short = [" ".join(t.split()[:24]) for t in long]
        a, b = (compute_metrics(["rare_word_recall"], MetricContext(samples=s, human=human))["rare_word_recall"]
                for s in (long, short))
        assert a > 0 and b > 0 and abs(a - b) / a < 0.15, (k, a, b)
