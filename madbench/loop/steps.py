"""One generation of a chain as small steps with typed inputs and outputs.

    madbench run --preset smoke       # runs these steps for every chain and generation

Generation g >= 1 (composed by ``loop.Runner._compute_generation``, top to bottom)::

    build_mix       history + regime + mode + mix mitigations      -> Mix
    train           init (fresh or previous) + train + save        -> Trained
    evaluate_model  model metrics + lm-eval tasks                  -> Scores
    sample          sampler + logits processors + sample filters   -> Samples
    score_samples   sample metrics + the generation-0 reference panel -> Scores
    record          samples.jsonl, mix.json, metrics.json, meta.json (written last) -> meta

Generation 0 is trained once per seed (:func:`train_gen0`) and reused by every chain of that
seed (:func:`reuse_gen0`); its samples are cached per sampling setup (:func:`gen0_samples`).
Each step takes the :class:`~madbench.loop.runner.Runner` for what a run shares (config, corpus split,
tokenizer, base model, run folder) and writes only into the generation's temporary folder.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List

from madbench.loop import ecosystem
from madbench.results import integrity
from madbench.results import fileio
from madbench.models import weights
from madbench.config.run_config import config_hash
from madbench.data.corpus import MODEL, Doc
from madbench.errors import MadbenchError
from madbench.metrics import MetricContext
from madbench.mitigations import MitigationContext, loss_weights
from madbench.loop.regimes import REGIMES, RegimeContext, apply_mode
from madbench.results.run_store import GEN0_RECORD, LM_EVAL, META, METRICS, MIX, SAMPLES
from madbench.generation.sampling import generate, make_prompts
from madbench.loop.schedules import real_fraction_at, schedule_target
from madbench.training.trainer import train_lora

if TYPE_CHECKING:  # the runner composes the steps; they only read its shared state
    from madbench.loop.runner import Chain, Runner


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


# ---------------------------------------------------------------------- generation 0
def train_gen0(run: "Runner", seed: int, out: Path, start: float) -> None:
    """Train generation 0 of ``seed`` on real documents into ``out`` (its record written last)."""
    mix = Mix.of(0, run.split.pool[: run.cfg.data.train_docs])
    model = weights.init_model(run.base, ecosystem.member_config(run.cfg, seed), derive_seed(seed, "lora-init", 0), None)
    result = train_lora(model, run.tokenizer, [d.text for d in mix.docs], run.cfg, derive_seed(seed, "order", 0),
                        desc=f"gen 0 seed {seed}: training")
    weights.save(result.model, run.weights_dir(out), run.tokenizer, run.base)
    fileio.write_json(out / MIX, mix.manifest)
    scores = evaluate_model(run, result.model, out)
    fileio.write_json(out / GEN0_RECORD, {"metrics": scores.metrics, "intervals": scores.intervals, **result.stats.as_dict(),
                                      "seconds": time.perf_counter() - start, "integrity": integrity.record(out)})  # last


def reuse_gen0(run: "Runner", seed: int) -> tuple[Mix, Trained, Scores]:
    """Generation 0 of a chain: the seed's shared model, mix, train record and model scores."""
    folder = run.ensure_gen0(seed)
    model = run.load_adapter(run.weights_dir(folder))
    g0 = fileio.read_json(folder / GEN0_RECORD)
    train = {k: v for k, v in g0.items() if k.startswith(("train_", "mix_tokens"))}
    mix = Mix([], fileio.read_json(folder / MIX))
    return mix, Trained(model, train), Scores(g0["metrics"], g0.get("intervals", {}))


def gen0_samples(run: "Runner", chain: "Chain", mitigations, mctx: MitigationContext) -> Samples:
    """Generation-0 samples are cached per sampling setup, so plain chains share them."""
    key = config_hash({"sampling": run.cfg.sampling, "data": run.cfg.data, "m": [(m.name, m.p) for m in mitigations]})
    cache = run.store.gen0_sample_cache(chain.seed, key)
    if cache.is_file():
        data, why = integrity.read_checked_json(cache)
        if why:
            raise MadbenchError(f"{cache} {why}; recompute it with: madbench run --resume {run.store.root} --repair")
        docs = {k: [Doc(d["id"], d["text"], MODEL, 0, chain.id) for d in data[k]] for k in ("all", "kept")}
        return Samples(docs["all"], docs["kept"], data["stats"])
    samples = sample(run, mctx.model, chain, 0, mitigations, mctx)
    if run.is_main:  # the files hold id and text only: provenance comes from where they are read
        integrity.write_checked_json(cache, {"all": [{"id": d.id, "text": d.text} for d in samples.all],
                              "kept": [{"id": d.id, "text": d.text} for d in samples.kept], "stats": samples.stats})
    return samples


# ---------------------------------------------------------------------- generation g >= 1
def build_mix(run: "Runner", chain: "Chain", g: int, mitigations, mctx: MitigationContext) -> Mix:
    """The regime's mix (regimes.py), its mode (replace / accumulate / accumulate_subsample), then the mix mitigations."""
    cfg = run.cfg
    history = run.history(chain, g)
    mctx.history, mctx.train_docs = history, cfg.data.train_docs  # for mix-level mitigations
    rctx = RegimeContext(generation=g, train_docs=cfg.data.train_docs, real_fraction=real_fraction_at(cfg, run.real_fractions, g),
                         pool=run.split.pool, fresh=run.split.fresh, synthetic=history,
                         accumulate=chain.mode in ("accumulate", "accumulate_subsample"),
                         real_fractions=tuple(run.real_fractions or ()),
                         **(dict(peers=ecosystem.peer_history(run, chain, g), real_source=cfg.loop.ecosystem.real)
                            if chain.regime == ecosystem.NAME else {}))
    docs = apply_mode(REGIMES.get(chain.regime)(rctx), chain.mode, rctx, derive_seed(chain.seed, "subsample"))
    stats: Dict[str, dict] = {}
    for m in mitigations:
        docs, s = m.transform_mix(docs, mctx)
        if s:
            stats[m.name] = s
    if not docs:
        raise MadbenchError(f"chain {chain.id}: generation {g} has an empty training mix; check the mitigations' parameters")
    return Mix.of(g, docs, stats)


def train(run: "Runner", chain: "Chain", g: int, mix: Mix, mitigations, mctx: MitigationContext, out: Path) -> Trained:
    """Initialise (fresh, or from the previous generation: loop.init_from), train on the mix, save into ``out``."""
    cfg = run.cfg
    init = run.previous_weights(chain, g) if cfg.loop.init_from == "previous" else None
    model = weights.init_model(run.base, ecosystem.member_config(cfg, chain.seed), derive_seed(chain.seed, "lora-init", g), init)
    token_weights = loss_weights(mitigations, mctx)  # None unless a mitigation acts on the loss
    result = train_lora(model, run.tokenizer, [d.text for d in mix.docs], cfg,
                        derive_seed(chain.seed, chain.regime, chain.mode, "order", g),
                        desc=f"{chain.id} gen {g}: training", token_weights=token_weights)
    loss_stats = {}
    if result.token_stats is not None:
        loss_stats = {m.name: m.token_stats(result.token_stats.get(m.name, {})) for m in mitigations if m.acts_on_loss}
    weights.save(result.model, run.weights_dir(out), run.tokenizer, run.base)
    return Trained(result.model, result.stats.as_dict(), loss_stats)


def evaluate_model(run: "Runner", model, out: Path) -> Scores:
    """Model metrics (needs='model') and lm-eval task scores, with 95% intervals."""
    ctx = MetricContext(samples=[], human=[d.text for d in run.split.eval], model=model,
                        tokenizer=run.tokenizer, batch_size=run.cfg.eval.batch_size)
    metrics, intervals = run.compute_metrics(run.metric_names("model"), ctx, "evaluating model")
    if run.cfg.eval.tasks:
        from madbench.evaluation.lmeval import run_tasks, task_intervals

        metrics.update(run_tasks(model, run.tokenizer, run.cfg, run.split, out / LM_EVAL))
        intervals.update(task_intervals(out / LM_EVAL))
    return Scores(metrics, intervals)


def sample(run: "Runner", model, chain: "Chain", g: int, mitigations, mctx: MitigationContext) -> Samples:
    """Sample a generation's synthetic docs; the mitigations' filters keep some (madbench/mitigations/compose.py)."""
    from madbench.mitigations.compose import compose_samples

    processors = [p for m in mitigations for p in m.logits_processors(mctx)]
    drawn: List[Doc] = []

    def draw(n: int, rnd: int) -> List[Doc]:  # round 0 is what a chain without filters samples
        gen = g if rnd == 0 else f"{g}.{rnd}"
        prompts = make_prompts(run.cfg, run.split.pool, n, chain.seed, gen)
        seed = derive_seed(chain.seed, "sample", g) if rnd == 0 else derive_seed(chain.seed, "sample", g, "top-up", rnd)
        texts = generate(model, run.tokenizer, prompts, run.cfg, seed, processors,
                         desc=f"{chain.id} gen {g}: sampling" + (f" (top-up {rnd})" if rnd else ""))
        new = [Doc(f"g{g:03d}-{len(drawn) + i:05d}", t, MODEL, g, chain.id) for i, t in enumerate(texts)]
        drawn.extend(new)
        return new

    docs, kept, stats = compose_samples(draw, mitigations, mctx, run.cfg.sampling.num_samples, where=f"chain {chain.id} gen {g}: ")
    return Samples(docs, kept, stats)


def score_samples(run: "Runner", chain: "Chain", g: int, samples: Samples, model, out: Path, clock) -> Scores:
    """Sample metrics (needs='samples' / 'human') and the generation-0 reference panel (madbench/metrics/tail.py)."""
    texts = [d.text for d in samples.scored(run.cfg.sampling.num_samples)]
    with clock("evaluate_samples"):
        ctx = MetricContext(samples=texts, human=[d.text for d in run.split.eval],
                            tokenizer=run.tokenizer, batch_size=run.cfg.eval.batch_size)
        metrics, intervals = run.compute_metrics(run.metric_names("samples") + run.metric_names("human"), ctx, "evaluating samples")
    names = run.metric_names("reference")
    if names:
        from madbench.metrics.tail import reference_panel

        with clock("evaluate_reference"):
            reference = run.reference(chain.seed)  # at generation 0 the chain's model is the reference: score once
            values, panel_intervals = reference_panel(names, texts, [d.text for d in run.split.eval], reference,
                                                      reference if g == 0 else model, run.tokenizer, run.cfg.eval.batch_size,
                                                      None if g == 0 else run.store.gen_dir(chain.id, 0), run.cfg.sampling.num_samples, out)
            metrics.update(values)
            intervals.update(panel_intervals)
    return Scores(metrics, intervals)


def record(run: "Runner", chain: "Chain", g: int, out: Path, mix: Mix, trained: Trained, model_scores: Scores, samples: Samples,
           sample_scores: Scores, clock, start: float) -> dict:
    """Write the generation's files; meta.json (with the integrity record of the others) last. Returns meta."""
    kept_ids = {d.id for d in samples.kept}
    fileio.write_jsonl(out / SAMPLES, [{"id": d.id, "text": d.text, "kept": d.id in kept_ids} for d in samples.all])
    fileio.write_json(out / MIX, mix.manifest)
    metrics = {**model_scores.metrics, **sample_scores.metrics}
    documents = mix.manifest["documents"]
    n_syn = sum(1 for d in documents if d["source"] == "synthetic")
    meta = {
        "chain": chain.id, "generation": g, "metrics": metrics,
        "intervals": {**model_scores.intervals, **sample_scores.intervals},  # 95% estimator intervals
        "train_tokens": trained.train.get("train_tokens"), "train_docs": len(documents),
        "synthetic_fraction": n_syn / max(1, len(documents)),
        **schedule_target(run.cfg, run.real_fractions, chain.regime, g),
        "train": trained.train,
        "mitigations": {"mix": mix.stats, "samples": samples.stats, **({"train": trained.loss_stats} if trained.loss_stats else {})},
        "num_samples": len(samples.all), "num_kept": len(samples.kept),
        "num_scored": len(samples.scored(run.cfg.sampling.num_samples)),
        "seconds": time.perf_counter() - start,
        "timing": clock.seconds,  # per phase; generation 0 reuses the shared training and model evaluation
    }
    fileio.write_json(out / METRICS, metrics)
    meta["integrity"] = integrity.record(out)  # byte counts and SHA-256 of every file; resume verifies them
    fileio.write_json(out / META, meta)  # written last: its presence marks the generation finished
    return meta
