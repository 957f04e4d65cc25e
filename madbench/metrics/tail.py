"""The generation-0 reference panel: each sample's perplexity under the original model.

    madbench run --preset smoke        # tail_* metrics per generation, RUN/chains/*/gen_*/reference_ppl.json
    madbench report runs/smoke         # tail_density.png: one density per generation, per chain

"Original model" is generation 0, the model fine-tuned on real data, as in Shumailov et
al. 2024 (Nature), Fig. 1b/c: the later generations' samples are scored by the model that
was trained on human text, not by the untuned base model (which never saw the corpus).
Every generation's first ``sampling.num_samples`` samples are scored (per-sample
perplexity = exp(mean token NLL)); the values are kept in the generation's folder and
compared with generation 0's own samples scored the same way. Under collapse the density
moves towards low perplexity (over-probable text) and grows a tail of improbable samples.

  tail_ppl_median          median per-sample perplexity (descriptive: no direction)
  tail_ppl_p05 / _p95      5th / 95th percentiles (p05 falling: over-probable text; p95 rising: improbable text)
  tail_below_g0_p05        share of samples below generation 0's own 5th percentile (0.05 at generation 0)
  tail_above_g0_p95        share of samples above generation 0's own 95th percentile (0.05 at generation 0)
  tail_w1_log_ppl          Wasserstein-1 distance between this generation's and generation 0's log perplexities

These metrics have ``needs="reference"``: the loop gives them the generation-0 model as
``ctx.model`` and generation 0's log perplexities as ``ctx.cache["g0_log_ppl"]`` (None at
generation 0, where the samples are their own reference).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

from madbench.metrics import METRICS

TAIL_METRICS = ("tail_ppl_median", "tail_ppl_p05", "tail_ppl_p95", "tail_below_g0_p05", "tail_above_g0_p95",
                "tail_w1_log_ppl")


def log_ppl(ctx) -> List[float]:
    """Per-sample log perplexity (mean token NLL) under ``ctx.model``; cached; non-finite (empty) samples dropped."""
    if "log_ppl" not in ctx.cache:
        from madbench.metrics.perplexity import per_text_nll

        # kept in the reference's ScoreCache: chains of a seed share generation 0's samples and score them with it
        key = (tuple(ctx.samples), ctx.batch_size)
        values = ctx.scores.get("log_ppl", key) if ctx.scores is not None else None
        if values is None:
            values = [float(v) for v in per_text_nll(ctx.model, ctx.tokenizer, ctx.samples, ctx.batch_size) if math.isfinite(v)]
            if ctx.scores is not None:
                ctx.scores.put("log_ppl", key, values)
        ctx.cache["log_ppl"] = list(values)
    return ctx.cache["log_ppl"]


def _reference(ctx) -> List[float]:
    g0 = ctx.cache.get("g0_log_ppl")
    return log_ppl(ctx) if g0 is None else list(g0)


def wasserstein_1(a: Sequence[float], b: Sequence[float]) -> float:
    """W1 between two empirical 1-D distributions: the area between their CDFs."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    points = np.concatenate([a, b])
    points.sort()
    widths = np.diff(points)
    cdf_a = np.searchsorted(a, points[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, points[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


def _quantile_ppl(ctx, q: float) -> Optional[float]:
    values = log_ppl(ctx)
    return float(math.exp(np.quantile(values, q))) if values else None


def _share(ctx, q: float, below: bool) -> Optional[float]:
    values, ref = np.asarray(log_ppl(ctx)), _reference(ctx)
    if not len(values) or not ref:
        return None
    edge = np.quantile(ref, q)
    return float(np.mean(values < edge) if below else np.mean(values > edge))


@METRICS.register("tail_ppl_median", higher_is_better=None, needs="reference", value_range=(1.0, None))
def tail_ppl_median(ctx):
    """Median per-sample perplexity of the samples under the generation-0 model (descriptive)."""
    return _quantile_ppl(ctx, 0.5)


@METRICS.register("tail_ppl_p05", higher_is_better=True, needs="reference", value_range=(1.0, None))
def tail_ppl_p05(ctx):
    """5th percentile of per-sample perplexity under generation 0 (falls as over-probable text takes over)."""
    return _quantile_ppl(ctx, 0.05)


@METRICS.register("tail_ppl_p95", higher_is_better=False, needs="reference", value_range=(1.0, None))
def tail_ppl_p95(ctx):
    """95th percentile of per-sample perplexity under generation 0 (rises with a tail of improbable samples)."""
    return _quantile_ppl(ctx, 0.95)


@METRICS.register("tail_below_g0_p05", higher_is_better=False, needs="reference", value_range=(0.0, 1.0))
def tail_below_g0_p05(ctx):
    """Share of samples below generation 0's 5th percentile of per-sample perplexity (over-probable text)."""
    return _share(ctx, 0.05, below=True)


@METRICS.register("tail_above_g0_p95", higher_is_better=False, needs="reference", value_range=(0.0, 1.0))
def tail_above_g0_p95(ctx):
    """Share of samples above generation 0's 95th percentile of per-sample perplexity (improbable text)."""
    return _share(ctx, 0.95, below=False)


@METRICS.register("tail_w1_log_ppl", higher_is_better=False, needs="reference", value_range=(0.0, None))
def tail_w1_log_ppl(ctx):
    """Wasserstein-1 distance between the generation's and generation 0's per-sample log perplexities."""
    values, ref = log_ppl(ctx), _reference(ctx)
    return wasserstein_1(values, ref) if values and ref else None



def reference_panel(names, texts, human, reference, current, tokenizer, batch_size: int, gen0_dir, num_samples: int,
                    out_dir, reference_scores=None, current_scores=None) -> tuple:
    """Compute the ``needs="reference"`` metrics ``names`` for a generation's samples ``texts``: (values, 95% intervals).

    ``gen0_dir`` is the chain's generation-0 folder (None at generation 0): its ``reference_ppl.json``
    gives generation 0's values (a generation 0 written before the panel existed is scored now).
    Writes the per-sample log perplexities to ``out_dir/reference_ppl.json``.
    """
    from madbench.results import fileio
    from madbench.results.run_store import REFERENCE_PPL, SAMPLES
    from madbench.metrics import MetricContext, compute_metrics

    def ctx(samples, g0=None):
        return MetricContext(samples=samples, human=list(human), model=reference, tokenizer=tokenizer,
                             batch_size=batch_size, scores=reference_scores,
                             cache={"g0_log_ppl": g0, "current_model": current, "current_scores": current_scores})

    g0 = None
    if gen0_dir is not None:
        saved = gen0_dir / REFERENCE_PPL
        if saved.is_file():
            g0 = fileio.read_json(saved)["log_ppl"]
        else:
            g0 = log_ppl(ctx([r["text"] for r in fileio.read_jsonl(gen0_dir / SAMPLES)[:num_samples]]))
    from madbench.metrics.intervals import clip_intervals
    from madbench.metrics.rare import rare_intervals

    c = ctx(list(texts), g0)
    metrics = compute_metrics(names, c)
    fileio.write_json(out_dir / REFERENCE_PPL, {"reference": "generation 0 of this chain's seed", "log_ppl": log_ppl(c)})
    intervals = {**tail_intervals([n for n in names if metrics.get(n) is not None], c), **rare_intervals(names, c)}
    return metrics, clip_intervals(intervals)


def tail_intervals(names: Sequence[str], ctx, resamples: Optional[int] = None) -> dict:
    """95% percentile-bootstrap intervals of the tail_* metrics, generation 0's noise included.

    Each replicate resamples the generation's samples and, independently, generation 0's samples (its
    quantiles and distribution are estimated from them too; at generation 0 both are the same draw), and
    recomputes the metric; the interval is the replicates' 2.5-97.5 percentiles, widened to hold the value.
    The Wasserstein distance gets the same plain percentile interval (no re-centring, so no clipping)."""
    from madbench.metrics import MetricContext
    from madbench.metrics.intervals import RESAMPLES, SEED, percentile_interval

    values = np.asarray(log_ppl(ctx), float)
    g0 = ctx.cache.get("g0_log_ppl")
    reference = None if g0 is None else np.asarray(g0, float)
    wanted = [n for n in names if n in TAIL_METRICS]
    if not wanted or len(values) < 2 or (reference is not None and len(reference) < 2):
        return {}
    rng = np.random.default_rng(SEED)
    draws = []
    for _ in range(resamples or RESAMPLES):
        sample = values[rng.integers(0, len(values), len(values))]
        ref = sample if reference is None else reference[rng.integers(0, len(reference), len(reference))]
        draws.append((list(sample), list(ref)))
    out = {}
    for name in wanted:
        fn = METRICS.get(name)
        value = fn(ctx)
        stats = [fn(MetricContext(samples=[], human=[], cache={"log_ppl": v, "g0_log_ppl": r})) for v, r in draws]
        bounds = percentile_interval(stats) if value is not None else None
        if bounds is not None:
            out[name] = [min(bounds[0], value), max(bounds[1], value)]
    return out
