"""One generation of a chain as small steps with typed inputs and outputs.

    madbench run --preset smoke       # runs these steps for every chain and generation

Generation g >= 1 (composed by ``loop.Runner._compute_generation``, top to bottom)::

    build_mix       history + regime + mode + mix mitigations      -> Mix
    train           init (fresh or previous) + train + save        -> Trained
    evaluate_model  model metrics + lm-eval tasks                  -> Scores
    sample          sampler + logits processors + sample filters   -> Samples
    score_samples   sample metrics + the generation-0 reference panel -> Scores
    record          samples.jsonl, mix.json, metrics.json, meta.json (written last) -> meta

A sample (a Doc) is the continuation its model generated; its prompt and the prompt's source document
travel beside it (samples.jsonl: text, prompt, source). Mixes, sample metrics, the reference panel and the
mitigations see the continuation; ``sampling.keep_prompt`` trains on prompt + continuation with the prompt
out of the loss (:func:`training_texts`). Each generation records ``prompt_share`` and ``duplicate_rate``.

Generation 0 is trained once per seed (:func:`train_gen0`) and reused by every chain of that
seed (:func:`reuse_gen0`); its samples are cached per sampling setup (:func:`gen0_samples`).
Each step takes the run's frozen :class:`~madbench.loop.context.StepContext` (config, corpus split,
tokenizer, base model, run folder, schedule, model provider) and writes only into the generation's
temporary folder. A trained model travels with its ScoreCache (madbench/models/scores.py), so the
perplexity forward of ``evaluate_model`` is reused by lm-eval and the rare-token metrics.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from madbench.results import integrity
from madbench.results import fileio
from madbench.models import weights
from madbench.config.run_config import config_hash
from madbench.data.corpus import MODEL, Doc
from madbench.errors import MadbenchError
from madbench.loop.context import StepContext
from madbench.metrics import MetricContext, compute_with_intervals, names_needing
from madbench.metrics.repetition import duplicate_rate
from madbench.models.scores import ScoreCache
from madbench.mitigations import MitigationContext, loss_weights
from madbench.loop.regimes import RegimeContext, apply_mode, regime
from madbench.results.run_store import GEN0_RECORD, LM_EVAL, META, METRICS, MIX, SAMPLES, sample_doc, sample_row
from madbench.generation.sampling import draw_prompts, generate
from madbench.training.trainer import train_lora
from madbench.loop.rows import mix_share, mix_texts, prompt_share, token_counter, training_texts, validation_rows  # noqa: F401  (training_texts: tests)

if TYPE_CHECKING:  # the runner composes the steps
    from madbench.loop.runner import Chain


def derive_seed(*parts) -> int:
    """A reproducible 32-bit seed from its parts: derive_seed(seed, "sample", g)."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


@dataclass
class Mix:
    """A generation's training documents and what the mix mitigations did to them."""

    docs: List[Doc]
    manifest: dict  # mix.json: {"generation", "documents": [{"id", "source": "real" | "synthetic"}]}
    stats: Dict[str, dict] = field(default_factory=dict)  # per mix mitigation

    @classmethod
    def of(cls, g: int, docs: List[Doc], stats: Dict[str, dict] | None = None) -> "Mix":
        manifest = {"generation": g, "documents": [{"id": d.id, "source": "real" if d.is_human else "synthetic"} for d in docs]}
        return cls(docs, manifest, stats or {})


@dataclass
class Trained:
    model: Any
    train: dict  # the train record (madbench.training.trainer.TrainStats.as_dict(), or generation 0's)
    loss_stats: Dict[str, dict] = field(default_factory=dict)  # per loss-side mitigation (token_weights)
    scores: ScoreCache = field(default_factory=ScoreCache)  # what these weights have scored (new weights: a new cache)


@dataclass
class Scores:
    metrics: Dict[str, float]
    intervals: Dict[str, list]  # 95% estimator intervals (madbench.metrics.intervals)


@dataclass
class Samples:
    all: List[Doc]
    kept: List[Doc]  # what enters the chain's history
    stats: dict  # per sample-filter mitigation

    def scored(self, n: int) -> List[Doc]:
        # Diversity is scored on the first sampling.num_samples samples (the same prompts in every chain):
        # a mitigation that oversamples must not look less diverse just because it wrote more text.
        return self.all[:n]


# ---------------------------------------------------------------------- shared by the steps
def compute_metrics(ctx: StepContext, names: List[str], mctx: MetricContext, desc: str) -> Tuple[Dict[str, float], Dict[str, list]]:
    """compute_with_intervals with a progress bar (one step per metric; the main process only)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(names), desc=desc, unit="metric", leave=False, dynamic_ncols=True, disable=None if ctx.is_main else True)

    def step(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        return compute_with_intervals(names, mctx, progress=step)
    finally:
        bar.close()


def use_scorers(ctx: StepContext, mctx: MitigationContext, seed: int, current=None, load_current=None) -> None:
    """Set ``mctx.score`` / ``mctx.score_entropy``: per-text NLL (and predictive entropy) under the 'current'
    model (``current``, or ``load_current()`` loaded on first use) or the generation-0 'reference' model."""
    from madbench.metrics.perplexity import per_text_nll, per_text_nll_entropy

    loaded = {}

    def model_for(which: str):
        if which != "current":
            return ctx.models.reference(seed)
        if "model" not in loaded:
            loaded["model"] = current if current is not None else load_current()
        return loaded["model"]

    bs = ctx.cfg.eval.batch_size
    mctx.score = lambda texts, which="current": per_text_nll(model_for(which), ctx.tokenizer, texts, bs)
    mctx.score_entropy = lambda texts, which="current": per_text_nll_entropy(model_for(which), ctx.tokenizer, texts, bs)


# ---------------------------------------------------------------------- generation 0
def train_gen0(ctx: StepContext, seed: int, train_cfg, out: Path, start: float) -> None:
    """Train generation 0 of ``seed`` on real documents into ``out`` (its record written last); ``train_cfg`` is
    the config its chains' regime trains with (Regime.train_config: an ecosystem member's own LoRA rank)."""
    mix = Mix.of(0, ctx.split.pool[: ctx.cfg.data.train_docs])
    model = weights.init_model(ctx.base, train_cfg, derive_seed(seed, "lora-init", 0), None)
    texts, prompt_chars = mix_texts(ctx.cfg, mix.docs)
    result = train_lora(model, ctx.tokenizer, texts, ctx.cfg, derive_seed(seed, "order", 0),
                        desc=f"gen 0 seed {seed}: training", prompt_chars=prompt_chars if any(prompt_chars) else None,
                        validation=validation_rows(ctx))
    weights.save(result.model, ctx.models.weights_dir(out), ctx.tokenizer, ctx.base)
    fileio.write_json(out / MIX, mix.manifest)
    scores = evaluate_model(ctx, result.model, out, ScoreCache())
    fileio.write_json(out / GEN0_RECORD, {"metrics": scores.metrics, "intervals": scores.intervals, **result.stats.as_dict(),
                                      "seconds": time.perf_counter() - start, "integrity": integrity.record(out)})  # last


def reuse_gen0(ctx: StepContext, folder: Path) -> tuple[Mix, Trained, Scores]:
    """Generation 0 of a chain from the seed's finished generation-0 ``folder``: model, mix, train record, model scores."""
    model = ctx.models.load(folder)
    g0 = fileio.read_json(folder / GEN0_RECORD)
    train = {k: v for k, v in g0.items() if k.startswith(("train_", "mix_tokens"))}
    mix = Mix([], fileio.read_json(folder / MIX))
    return mix, Trained(model, train), Scores(g0["metrics"], g0.get("intervals", {}))


def gen0_samples(ctx: StepContext, chain: "Chain", mitigations, mctx: MitigationContext) -> Samples:
    """Generation-0 samples are cached per sampling setup, so plain chains share them."""
    key = config_hash({"sampling": ctx.cfg.sampling, "data": ctx.cfg.data, "m": [(m.name, m.p) for m in mitigations]})
    cache = ctx.store.gen0_sample_cache(chain.seed, key)
    if cache.is_file():
        data, why = integrity.read_checked_json(cache)
        if why:
            raise MadbenchError(f"{cache} {why}; recompute it with: madbench run --resume {ctx.store.root} --repair")
        docs = {k: [sample_doc(d, 0, chain.id, cache) for d in data[k]] for k in ("all", "kept")}
        return Samples(docs["all"], docs["kept"], data["stats"])
    samples = sample(ctx, mctx.model, chain, 0, mitigations, mctx)
    if ctx.is_main:  # the files hold id, text, prompt and its source only: provenance comes from where they are read
        integrity.write_checked_json(cache, {"all": [sample_row(d, True) for d in samples.all],
                                             "kept": [sample_row(d, True) for d in samples.kept], "stats": samples.stats})
    return samples


# ---------------------------------------------------------------------- generation g >= 1
def build_mix(ctx: StepContext, chain: "Chain", g: int, mitigations, mctx: MitigationContext) -> Mix:
    """The regime's mix (regimes.py), its mode (replace / accumulate / accumulate_subsample), then the mix mitigations."""
    cfg = ctx.cfg
    history = ctx.history(chain, g)
    mctx.history, mctx.train_docs = history, cfg.data.train_docs  # for mix-level mitigations
    rctx = RegimeContext(generation=g, train_docs=cfg.data.train_docs, real_fraction=ctx.schedule.real[g],
                         pool=ctx.split.pool, fresh=ctx.split.fresh, synthetic=history,
                         accumulate=chain.mode in ("accumulate", "accumulate_subsample"),
                         real_fractions=ctx.schedule.real[1:], count_tokens=token_counter(ctx))
    docs = apply_mode(regime(chain.regime).mix(rctx, ctx, chain), chain.mode, rctx, derive_seed(chain.seed, "subsample"))
    stats: Dict[str, dict] = {}
    for m in mitigations:
        docs, s = m.transform_mix(docs, mctx)
        if s:
            stats[m.name] = s
    if not docs:
        raise MadbenchError(f"chain {chain.id}: generation {g} has an empty training mix; check the mitigations' parameters")
    return Mix.of(g, docs, stats)


def train(ctx: StepContext, chain: "Chain", g: int, mix: Mix, mitigations, mctx: MitigationContext, out: Path) -> Trained:
    """Initialise (fresh, or from the previous generation: loop.init_from), train on the mix, save into ``out``."""
    cfg = ctx.cfg
    init = ctx.models.previous_weights(chain, g) if cfg.loop.init_from == "previous" else None
    model = weights.init_model(ctx.base, regime(chain.regime).train_config(cfg, chain), derive_seed(chain.seed, "lora-init", g), init)
    token_weights = loss_weights(mitigations, mctx)  # None unless a mitigation acts on the loss
    texts, prompt_chars = mix_texts(cfg, mix.docs)
    result = train_lora(model, ctx.tokenizer, texts, cfg, derive_seed(chain.seed, chain.regime, chain.mode, "order", g),
                        desc=f"{chain.id} gen {g}: training", token_weights=token_weights, prompt_chars=prompt_chars,
                        validation=validation_rows(ctx))
    loss_stats = {}
    if result.token_stats is not None:
        loss_stats = {m.name: m.token_stats(result.token_stats.get(m.name, {})) for m in mitigations if m.acts_on_loss}
    weights.save(result.model, ctx.models.weights_dir(out), ctx.tokenizer, ctx.base)
    return Trained(result.model, result.stats.as_dict(), loss_stats)


def evaluate_model(ctx: StepContext, model, out: Path, scores: ScoreCache) -> Scores:
    """Model metrics (needs='model') and lm-eval task scores, with 95% intervals; ``scores`` is the model's ScoreCache."""
    mctx = MetricContext(samples=[], human=[d.text for d in ctx.split.eval], model=model,
                         tokenizer=ctx.tokenizer, batch_size=ctx.cfg.eval.batch_size, scores=scores)
    metrics, intervals = compute_metrics(ctx, names_needing(ctx.cfg.eval.metrics, "model"), mctx, "evaluating model")
    if ctx.cfg.eval.tasks:
        from madbench.evaluation.lmeval import run_tasks, task_intervals

        metrics.update(run_tasks(model, ctx.tokenizer, ctx.cfg, ctx.split, out / LM_EVAL, scores))
        intervals.update(task_intervals(out / LM_EVAL))
    return Scores(metrics, intervals)


def sample(ctx: StepContext, model, chain: "Chain", g: int, mitigations, mctx: MitigationContext) -> Samples:
    """Sample a generation's synthetic docs; the mitigations' filters keep some (madbench/mitigations/compose.py)."""
    from madbench.mitigations.compose import compose_samples

    processors = [p for m in mitigations for p in m.logits_processors(mctx)]
    drawn: List[Doc] = []

    def draw(n: int, rnd: int) -> List[Doc]:  # round 0 is what a chain without filters samples
        prompts = draw_prompts(ctx.cfg, ctx.split.pool, n, chain.seed, g, start=len(drawn))  # top-ups: the next prompts
        seed = derive_seed(chain.seed, "sample", g) if rnd == 0 else derive_seed(chain.seed, "sample", g, "top-up", rnd)
        done = generate(model, ctx.tokenizer, [p.text for p in prompts], ctx.cfg, seed, processors,
                        desc=f"{chain.id} gen {g}: sampling" + (f" (top-up {rnd})" if rnd else ""))
        new = [Doc(f"g{g:03d}-{len(drawn) + i:05d}", c.continuation, MODEL, g, chain.id,
                   prompt=p.text, prompt_source=p.source) for i, (p, c) in enumerate(zip(prompts, done))]
        drawn.extend(new)
        return new

    docs, kept, stats = compose_samples(draw, mitigations, mctx, ctx.cfg.sampling.num_samples, where=f"chain {chain.id} gen {g}: ")
    return Samples(docs, kept, stats)


def score_samples(ctx: StepContext, chain: "Chain", g: int, samples: Samples, trained: Trained, out: Path, clock) -> Scores:
    """Sample metrics (needs='samples' / 'human') and the generation-0 reference panel (madbench/metrics/tail.py)."""
    cfg = ctx.cfg
    texts = [d.text for d in samples.scored(cfg.sampling.num_samples)]
    with clock("evaluate_samples"):
        mctx = MetricContext(samples=texts, human=[d.text for d in ctx.split.eval],
                             tokenizer=ctx.tokenizer, batch_size=cfg.eval.batch_size)
        names = names_needing(cfg.eval.metrics, "samples") + names_needing(cfg.eval.metrics, "human")
        metrics, intervals = compute_metrics(ctx, names, mctx, "evaluating samples")
    names = names_needing(cfg.eval.metrics, "reference")
    if names:
        from madbench.metrics.tail import reference_panel

        with clock("evaluate_reference"):
            # at generation 0 the chain's model is the reference: score once
            reference, ref_scores = ctx.models.reference(chain.seed), ctx.models.reference_scores(chain.seed)
            current, current_scores = (reference, ref_scores) if g == 0 else (trained.model, trained.scores)
            values, panel_intervals = reference_panel(names, texts, [d.text for d in ctx.split.eval], reference, current,
                                                      ctx.tokenizer, cfg.eval.batch_size,
                                                      None if g == 0 else ctx.store.gen_dir(chain.id, 0), cfg.sampling.num_samples,
                                                      out, ref_scores, current_scores)
            metrics.update(values)
            intervals.update(panel_intervals)
    return Scores(metrics, intervals)


def record(ctx: StepContext, chain: "Chain", g: int, out: Path, mix: Mix, trained: Trained, model_scores: Scores, samples: Samples,
           sample_scores: Scores, clock, start: float) -> dict:
    """Write the generation's files; meta.json (with the integrity record of the others) last. Returns meta."""
    kept_ids = {d.id for d in samples.kept}
    fileio.write_jsonl(out / SAMPLES, [sample_row(d, d.id in kept_ids) for d in samples.all])
    fileio.write_json(out / MIX, mix.manifest)
    metrics = {**model_scores.metrics, **sample_scores.metrics}
    documents = mix.manifest["documents"]
    n_syn = sum(1 for d in documents if d["source"] == "synthetic")
    meta = {
        "chain": chain.id, "generation": g, "metrics": metrics,
        "intervals": {**model_scores.intervals, **sample_scores.intervals},  # 95% estimator intervals
        "train_tokens": trained.train.get("train_tokens"), "train_docs": len(documents),
        "synthetic_fraction": n_syn / max(1, len(documents)),
        "prompt_share": prompt_share(mix.docs, mix_texts(ctx.cfg, mix.docs)[0]),
        "share": mix_share(ctx, mix.docs),  # the real share of the mix in documents and in trained tokens
        "duplicate_rate": duplicate_rate([d.text for d in samples.scored(ctx.cfg.sampling.num_samples)]),
        **ctx.schedule.target(g, regime(chain.regime).mixes_real),
        "train": trained.train,
        "mitigations": {"mix": mix.stats, "samples": samples.stats, **({"train": trained.loss_stats} if trained.loss_stats else {})},
        "num_samples": len(samples.all), "num_kept": len(samples.kept),
        "num_scored": len(samples.scored(ctx.cfg.sampling.num_samples)),
        "seconds": time.perf_counter() - start,
        "timing": clock.seconds,  # per phase; generation 0 reuses the shared training and model evaluation
    }
    fileio.write_json(out / METRICS, metrics)
    meta["integrity"] = integrity.record(out)  # byte counts and SHA-256 of every file; resume verifies them
    fileio.write_json(out / META, meta)  # written last: its presence marks the generation finished
    return meta
