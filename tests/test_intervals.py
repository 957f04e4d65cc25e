"""Estimator intervals: bootstrap against independent numpy, lm-eval stderr, report verdicts, old files, a real run."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from madbench.leaderboard.bundle import Invalid, build_submission, content_hash
from madbench.leaderboard.validate import check_data
from madbench.evaluation.lmeval import stderr_intervals
from madbench.metrics import MetricContext, compute_metrics, compute_with_intervals
from madbench.metrics.intervals import SEED, bootstrap_interval, compute_intervals
from madbench.metrics.repetition import self_bleu
from madbench.reporting.report import render
from madbench.results.collect import validate_results
from madbench.reporting.uncertainty import resolved

CHEAP = ["distinct_1", "distinct_2", "type_token_ratio", "mean_length", "self_bleu", "unigram_entropy",
         "zipf_exponent", "repetition_4gram", "mtld", "compression_ratio"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(300)]
    return [" ".join(rng.choice(vocab, size=int(rng.integers(15, 40)), p=None)) for _ in range(n)]


def test_bootstrap_equals_an_independent_numpy_percentile_bootstrap():
    x = np.random.default_rng(7).gamma(2.0, 3.0, size=40)  # skewed, so the re-centring matters
    got = bootstrap_interval(lambda idx: x[idx].mean(), len(x), float(x.mean()), resamples=500)
    means = x[np.random.default_rng(SEED).integers(0, len(x), size=(500, len(x)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5]) + (x.mean() - np.median(means))
    assert got == pytest.approx([low, high], rel=1e-12)


def test_bootstrap_of_a_mean_has_the_analytic_width():
    x = np.random.default_rng(3).normal(5.0, 2.0, size=400)
    low, high = bootstrap_interval(lambda idx: x[idx].mean(), len(x), float(x.mean()), resamples=2000)
    assert high - low == pytest.approx(2 * 1.96 * x.std(ddof=1) / math.sqrt(len(x)), rel=0.1)
    assert low < 5.0 < high


def test_perplexity_interval_resamples_held_out_documents():
    rng = np.random.default_rng(1)
    rows = [(float(c * rng.uniform(2.0, 6.0)), int(c)) for c in rng.integers(5, 60, size=30)]
    value = math.exp(sum(r[0] for r in rows) / sum(r[1] for r in rows))
    ctx = MetricContext(samples=[], human=["x"] * 30, cache={"perplexity:rows": rows})
    got = compute_intervals(["perplexity"], ctx, {"perplexity": value})["perplexity"]
    nll, cnt = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    idx = np.random.default_rng(SEED).integers(0, 30, size=(200, 30))
    boot = np.exp(nll[idx].sum(1) / cnt[idx].sum(1))
    expected = np.percentile(boot, [2.5, 97.5]) + (value - np.median(boot))
    assert got == pytest.approx(list(expected), rel=1e-9)


def test_sample_intervals_hold_the_values_shrink_with_more_samples_and_are_deterministic():
    small, large = _texts(16), _texts(96)
    # distinct-n is half-sampled: its width follows the metric's own spread at each set size (near-saturated
    # at 16 texts), not 1/sqrt(n); its calibration is checked in tests/test_calibration.py
    shrink = ["type_token_ratio", "mean_length", "unigram_entropy"]
    values, iv = compute_with_intervals(CHEAP, MetricContext(samples=small, human=[]))
    assert values == compute_metrics(CHEAP, MetricContext(samples=small, human=[]))  # values untouched
    assert values["self_bleu"] == pytest.approx(self_bleu(small), abs=0)
    assert iv == compute_with_intervals(CHEAP, MetricContext(samples=small, human=[]))[1]
    for name in CHEAP:
        low, high = iv[name]
        assert low <= values[name] <= high, name
    _, iv_large = compute_with_intervals(shrink, MetricContext(samples=large, human=[]))
    for name in shrink:
        low, high = iv[name]
        assert iv_large[name][1] - iv_large[name][0] < 0.6 * (high - low), name  # about 1/sqrt(6) as wide


def test_pairwise_distance_interval_leaves_out_copies_of_a_sample():
    emb = np.random.default_rng(2).normal(size=(32, 8))
    ctx = MetricContext(samples=[str(i) for i in range(32)], human=[], cache={"embeddings:samples": emb})
    values, iv = compute_with_intervals(["pairwise_cosine_distance", "vendi_score"], ctx)
    for name, (low, high) in iv.items():
        assert low <= values[name] <= high, name
    # copies counted as pairs at distance 0 would drag the bootstrap median to ~ (1 - 1/n) x value
    low, high = iv["pairwise_cosine_distance"]
    assert high - low < 0.2 * values["pairwise_cosine_distance"]


def test_lm_eval_stderr_becomes_a_normal_interval():
    results = {"cloze": {"alias": "cloze", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.4,
                         "acc_norm_stderr,none": "N/A"},
               "wiki": {"word_perplexity,none": 30.0, "word_perplexity_stderr,none": "N/A",
                        "bits_per_byte,strict": 1.5, "bits_per_byte_stderr,strict": 0.05}}
    assert stderr_intervals(results) == {"cloze/acc": pytest.approx([0.5 - 0.196, 0.5 + 0.196]),
                                         "wiki/bits_per_byte_strict": pytest.approx([1.5 - 0.098, 1.5 + 0.098])}


# ---------------------------------------------------------------- a real run, the report, old files, submissions
def _results(run) -> dict:
    return json.loads((run / "results.json").read_text())


def test_smoke_run_carries_an_interval_for_every_sample_and_model_metric(smoke_run):
    from madbench.metrics import METRICS, names_needing

    data = _results(smoke_run)
    panel = set(names_needing(METRICS.names(), "reference"))  # the generation-0 reference panel too (tail_*, rare_token_*)
    seen = set()
    for chain in data["chains"]:
        for gen in chain["generations"]:
            iv = gen["intervals"]
            for key, value in gen["metrics"].items():
                if value is None:
                    continue
                seen.add(key)
                assert key in iv, (chain["id"], gen["generation"], key)
                assert iv[key][0] <= value <= iv[key][1], (chain["id"], key, value, iv[key])
            assert iv["perplexity"][1] > iv["perplexity"][0]
    assert panel & seen, "the smoke run measures the reference panel"
    from madbench.api import load_results

    gen = load_results(smoke_run).chains[0].generations[-1]
    assert gen.intervals["distinct_2"][0] <= gen.metrics["distinct_2"] <= gen.intervals["distinct_2"][1]


def test_lm_eval_perplexities_bootstrap_the_saved_documents(smoke_run):
    from madbench.results import fileio
    from madbench.evaluation.lmeval import task_intervals

    folder = smoke_run / "gen0" / "seed0" / "lm_eval"
    value = fileio.read_json(folder / "results.json")["results"]["madbench_wikitext"]["word_perplexity,none"]
    rows = fileio.read_jsonl(folder / "samples_madbench_wikitext.jsonl")
    # the statistic the bootstrap resamples is lm-eval's own aggregate over all documents
    assert math.exp(-sum(r["word_perplexity"][0] for r in rows) / sum(r["word_perplexity"][1] for r in rows)) == pytest.approx(value)
    low, high = task_intervals(folder)["madbench_wikitext/word_perplexity"]
    assert low < value < high


def _two_chain_results(smoke_run, metric: str) -> dict:
    data = _results(smoke_run)
    a, b = data["chains"][0], data["chains"][1]
    for chain, last in ((a, [0.9, 1.1]), (b, [2.0, 2.2])):  # a overlaps gen 0's [1.0, 1.2], b does not
        first_gen, last_gen = chain["generations"][0], chain["generations"][-1]
        first_gen["metrics"][metric], first_gen["intervals"][metric] = 1.1, [1.0, 1.2]
        last_gen["metrics"][metric], last_gen["intervals"][metric] = sum(last) / 2, last
    return data


def test_report_marks_overlapping_intervals_not_resolved(smoke_run, tmp_path):
    data = _two_chain_results(smoke_run, "distinct_2")
    assert resolved(data["chains"][0], "distinct_2") is False and resolved(data["chains"][1], "distinct_2") is True
    render([data], tmp_path, metrics=["distinct_2"])
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "report.md").read_text().splitlines()
            if line.startswith("| ") and "[" in line}
    assert "not resolved" in rows[data["chains"][0]["id"]]
    assert "not resolved" not in rows[data["chains"][1]["id"]]
    assert "[1, 1.2] → 1 [0.9, 1.1]" in rows[data["chains"][0]["id"]]
    assert "not resolved" in (tmp_path / "report.html").read_text()


def test_old_results_without_intervals_still_load_report_and_submit(smoke_run, tmp_path):
    old = _results(smoke_run)
    for chain in old["chains"]:
        for gen in chain["generations"]:
            gen.pop("intervals", None)
    validate_results(old)
    render([old], tmp_path, metrics=["distinct_2", "perplexity"])
    assert "not resolved" not in (tmp_path / "report.md").read_text()
    check_data(build_submission(old))


def test_submission_carries_intervals_and_validation_checks_them(smoke_run):
    sub = build_submission(_results(smoke_run))
    assert all("perplexity" in g["intervals"] for c in sub["chains"] for g in c["generations"])
    check_data(sub)
    bad = copy.deepcopy(sub)
    bad["chains"][0]["generations"][0]["intervals"]["perplexity"] = [5.0, 1.0]
    bad["content_hash"] = content_hash(bad)
    with pytest.raises(Invalid, match="intervals/perplexity"):
        check_data(bad)


def test_plots_draw_estimator_bands_for_a_single_seed_and_error_bars_for_several(smoke_run):
    from madbench.reporting import plots
    from madbench.reporting import uncertainty
    from madbench.reporting.stats import aggregate_chains

    data = _results(smoke_run)
    plt = plots._pyplot()
    counts = []
    for chains in (data["chains"][:1], [dict(c, seed=s, id=f"{c['id']}-{s}") for c in data["chains"][:1] for s in (0, 1)]):
        for with_intervals in (False, True):
            groups = aggregate_chains(chains)
            if with_intervals:
                uncertainty.group_bands(chains, groups)
            fig, ax = plt.subplots()
            plots._draw(ax, groups, "distinct_2", {("fully_synthetic", ()): "C0"}, True)
            counts.append((len(ax.collections), len(ax.containers)))
            plt.close(fig)
    one_plain, one_bands, two_plain, two_bars = counts
    assert one_bands[0] == one_plain[0] + 1  # a hatched band for the one seed
    assert two_bars[1] == two_plain[1] + 1  # error bars beside the seed band
