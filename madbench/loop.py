"""The recursive loop: train, evaluate, sample, repeat, for every chain of a run.

    madbench run                      # default experiment, embedded SmolLM2 + KJV
    madbench run --preset smoke       # every regime, 2 generations, tiny model
    madbench run --resume runs/default

Run folder::

    RUN/config.json                  the resolved RunConfig (+ hash)
    RUN/events.jsonl                 one line per finished step
    RUN/gen0/seed<S>/                generation 0, shared by every chain with seed S:
        adapter/ (train.method=lora) or model/ (full)  mix.json  model_metrics.json  samples-<key>.jsonl
    RUN/chains/<chain>/gen_<g>/      one folder per generation, published atomically:
        adapter/ or model/ (g >= 1)  mix.json  samples.jsonl  metrics.json  meta.json
        reference_ppl.json          per-sample log perplexity under generation 0 (tail_* metrics)
    RUN/ecosystems/<id>/gen_<g>.json ecosystem regime: cross-member metrics (madbench/ecosystem.py)
    RUN/results.json                 everything, schema-checked (schemas/results.schema.json)

A generation folder appears only when complete (written to a temp folder and
renamed), so a crash loses at most the generation in progress, and a finished
generation is never recomputed or overwritten. Its meta.json, written last, holds the size
and SHA-256 of every other file: a damaged one is refused (madbench/integrity.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from . import ecosystem, integrity, io
from .config import RunConfig, config_hash
from .corpus import CorpusSplit, Doc, load_split
from .metrics import METRICS, MetricContext, compute_with_intervals
from .mitigations import MitigationContext, build_mitigations, loss_weights
from .models import load_base, resolve_model
from .regimes import REGIMES, RegimeContext, apply_mode, check_fresh, parse_regime
from .schedules import real_fraction_at, real_fractions, schedule_target
from .sampling import generate, make_prompts
from .training import train_lora
from . import weights  # train.method: LoRA adapter or full weights


HEADLINE = ("perplexity", "distinct_2", "self_bleu", "vendi_score", "mauve")  # shown in the progress log


def derive_seed(*parts) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class PhaseClock:
    """Wall seconds per phase of a generation: ``with clock("train"): ...``."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - start, 3)


@dataclass(frozen=True)
class Chain:
    regime: str
    mode: str
    seed: int
    mitigations: Tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.regime}-{self.mode}-s{self.seed}" + (f"-{'+'.join(self.mitigations)}" if self.mitigations else "")


def plan_chains(cfg: RunConfig) -> List[Chain]:
    chains = []
    for seed in cfg.loop.seeds:
        for spec in cfg.loop.regimes:
            name, mode = parse_regime(spec)
            for mset in cfg.loop.mitigations:
                if name == ecosystem.NAME:  # one chain per member (madbench/ecosystem.py)
                    chains.extend(Chain(name, mode, s, tuple(mset)) for s in ecosystem.member_seeds(cfg, seed))
                else:
                    chains.append(Chain(name, mode, seed, tuple(mset)))
    return chains


class Runner:
    """Owns the loaded base model and the run folder; runs chains generation by generation."""

    def __init__(self, cfg: RunConfig, run_dir: Path, log=print):
        from accelerate import PartialState

        self.cfg, self.run_dir = cfg, Path(run_dir)
        # Under `accelerate launch` every process runs this loop: all take the same decisions and
        # compute the same samples; training is data-parallel; only the main process writes.
        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.is_main = self.state.is_main_process
        self.log = log if self.is_main else (lambda *a, **k: None)
        self.split: CorpusSplit = load_split(cfg)
        check_fresh(cfg, len(self.split.fresh))  # before any training: one line when fresh slices would run out
        self.real_fractions = real_fractions(cfg)  # contamination schedule, None when loop.synthetic_share is unset
        with self.state.main_process_first():  # builds/converts a cached model once
            self.model_path = resolve_model(cfg, self.split)
        self.tokenizer, self.base = load_base(self.model_path, cfg)
        self._reference = {}  # seed -> generation-0 model, for verifier-style mitigations
        self._task_runner = None

    # ------------------------------------------------------------------ helpers
    def publish(self, tmp: Path, final: Path) -> None:
        """Main process renames the finished folder into place; the others drop their copy."""
        if self.is_main:
            io.commit_dir(tmp, final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        self.state.wait_for_everyone()

    def event(self, **row) -> None:
        if self.is_main:
            io.append_jsonl(self.run_dir / "events.jsonl", {"time": round(time.time(), 3), **row})

    def metric_names(self, needs: str) -> List[str]:
        return [m for m in self.cfg.eval.metrics if getattr(METRICS.get(m), "needs", "samples") == needs]

    def load_adapter(self, adapter_dir: Path):
        return weights.load(self.base, self.cfg, adapter_dir)

    def weights_dir(self, folder: Path) -> Path:
        """folder/adapter (LoRA) or folder/model (train.method=full)."""
        return folder / weights.dirname(self.cfg)

    def model_metrics(self, model, out_dir: Path) -> Tuple[Dict[str, float], Dict[str, list]]:
        """(values, 95% intervals) of the model metrics and lm-eval task scores."""
        ctx = MetricContext(samples=[], human=[d.text for d in self.split.eval], model=model,
                            tokenizer=self.tokenizer, batch_size=self.cfg.eval.batch_size)
        metrics, intervals = self._with_bar(self.metric_names("model"), ctx, "evaluating model")
        if self.cfg.eval.tasks:
            from .lmeval import run_tasks, task_intervals

            metrics.update(run_tasks(model, self.tokenizer, self.cfg, self.split, out_dir / "lm_eval"))
            intervals.update(task_intervals(out_dir / "lm_eval"))
        return metrics, intervals

    def sample_metrics(self, samples: List[str]) -> Tuple[Dict[str, float], Dict[str, list]]:
        ctx = MetricContext(samples=samples, human=[d.text for d in self.split.eval],
                            tokenizer=self.tokenizer, batch_size=self.cfg.eval.batch_size)
        names = self.metric_names("samples") + self.metric_names("human")
        return self._with_bar(names, ctx, "evaluating samples")

    def _with_bar(self, names: List[str], ctx: MetricContext, desc: str) -> Tuple[Dict[str, float], Dict[str, list]]:
        """compute_with_intervals with a progress bar (one step per metric)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names), desc=desc, unit="metric", leave=False, dynamic_ncols=True, disable=None if self.is_main else True)

        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        try:
            return compute_with_intervals(names, ctx, progress=step)
        finally:
            bar.close()

    def score_fn(self, seed: int, current):
        def score(texts: List[str], which: str = "current") -> List[float]:
            from .metrics.perplexity import per_text_nll

            model = current if which == "current" else self.reference(seed)
            return per_text_nll(model, self.tokenizer, texts, self.cfg.eval.batch_size)

        return score

    def reference_panel(self, chain: Chain, g: int, texts: List[str], out_dir: Path, model=None) -> Dict[str, float]:
        """The generation-0 reference panel (madbench/metrics/tail.py): tail_* and rare_token_* metrics."""
        from .metrics.tail import reference_panel

        return reference_panel(self.metric_names("reference"), texts, [d.text for d in self.split.eval],
                               self.reference(chain.seed), model, self.tokenizer, self.cfg.eval.batch_size,
                               None if g == 0 else self.gen_dir(chain, 0), self.cfg.sampling.num_samples, out_dir)

    def reference(self, seed: int):
        if seed not in self._reference:
            self._reference[seed] = self.load_adapter(self.weights_dir(self.gen0_dir(seed)))
        return self._reference[seed]

    def gen0_dir(self, seed: int) -> Path:
        return self.run_dir / "gen0" / f"seed{seed}"

    def gen_dir(self, chain: Chain, g: int) -> Path:
        return self.run_dir / "chains" / chain.id / f"gen_{g:03d}"

    def check(self, chains: List[Chain]) -> None:
        """Refuse to build on a damaged finished generation (one line naming the file and --repair)."""
        integrity.verify_folders(self.run_dir, [self.gen0_dir(c.seed) for c in chains],
                                 [self.gen_dir(c, g) for c in chains for g in range(self.cfg.loop.generations + 1)])

    # ------------------------------------------------------------------ generation 0
    def ensure_gen0(self, seed: int) -> Path:
        """Train generation 0 on real data once per seed (shared by all chains)."""
        final = self.gen0_dir(seed)
        if (final / "model_metrics.json").is_file():
            return final
        start = time.perf_counter()
        tmp = io.atomic_dir(final)
        with io.removed_on_error(tmp):
            self._train_gen0(seed, tmp, start)
        self.publish(tmp, final)
        self.event(event="gen0_trained", seed=seed, seconds=round(time.perf_counter() - start, 2))
        return final

    def _train_gen0(self, seed: int, tmp: Path, start: float) -> None:
        docs = self.split.pool[: self.cfg.data.train_docs]
        model = weights.init_model(self.base, ecosystem.member_config(self.cfg, seed), derive_seed(seed, "lora-init", 0), None)
        stats = train_lora(model, self.tokenizer, [d.text for d in docs], self.cfg, derive_seed(seed, "order", 0),
                           desc=f"gen 0 seed {seed}: training")
        model = stats.pop("model")
        weights.save(model, self.weights_dir(tmp), self.tokenizer, self.base)
        io.write_json(tmp / "mix.json", {"generation": 0, "documents": [{"id": d.id, "source": "real"} for d in docs]})
        metrics, intervals = self.model_metrics(model, tmp)
        io.write_json(tmp / "model_metrics.json", {"metrics": metrics, "intervals": intervals, **stats, "seconds": time.perf_counter() - start,
                                                   "integrity": integrity.record(tmp)})  # written last

    # ------------------------------------------------------------------ one chain
    def sample(self, model, chain: Chain, g: int, mitigations, mctx) -> Tuple[List[Doc], List[Doc], dict]:
        """Sample a generation's synthetic docs; return (all samples, kept samples, mitigation stats)."""
        from .mitigations.compose import compose_samples

        processors = [p for m in mitigations for p in m.logits_processors(mctx)]
        drawn: List[Doc] = []

        def draw(n: int, rnd: int) -> List[Doc]:  # round 0 is what a chain without filters samples
            gen = g if rnd == 0 else f"{g}.{rnd}"
            prompts = make_prompts(self.cfg, self.split.pool, n, chain.seed, gen)
            seed = derive_seed(chain.seed, "sample", g) if rnd == 0 else derive_seed(chain.seed, "sample", g, "top-up", rnd)
            texts = generate(model, self.tokenizer, prompts, self.cfg, seed, processors,
                             desc=f"{chain.id} gen {g}: sampling" + (f" (top-up {rnd})" if rnd else ""))
            new = [Doc(f"g{g:03d}-{len(drawn) + i:05d}", t) for i, t in enumerate(texts)]
            drawn.extend(new)
            return new

        return compose_samples(draw, mitigations, mctx, self.cfg.sampling.num_samples, where=f"chain {chain.id} gen {g}: ")

    def gen0_samples(self, chain: Chain, mitigations, mctx) -> Tuple[List[Doc], List[Doc], dict]:
        """Generation-0 samples are cached per sampling setup, so plain chains share them."""
        key = config_hash({"sampling": self.cfg.sampling, "data": self.cfg.data,
                           "m": [(m.name, m.p) for m in mitigations]})
        cache = self.gen0_dir(chain.seed) / f"samples-{key}.json"
        if cache.is_file():
            data = io.read_json(cache)
            return ([Doc(**d) for d in data["all"]], [Doc(**d) for d in data["kept"]], data["stats"])
        docs, kept, stats = self.sample(mctx.extra["model"], chain, 0, mitigations, mctx)
        if self.is_main:
            io.write_json(cache, {"all": [d.__dict__ for d in docs], "kept": [d.__dict__ for d in kept], "stats": stats})
        return docs, kept, stats

    def history(self, chain: Chain, upto: int) -> Dict[int, List[Doc]]:
        out = {}
        for g in range(upto):
            rows = io.read_jsonl(self.gen_dir(chain, g) / "samples.jsonl")
            out[g] = [Doc(r["id"], r["text"]) for r in rows if r.get("kept", True)]
        return out

    def run_generation(self, chain: Chain, g: int) -> None:
        final = self.gen_dir(chain, g)
        if (final / "meta.json").is_file():
            return  # finished earlier: never recomputed, never overwritten
        start = time.perf_counter()
        tmp = io.atomic_dir(final)
        with io.removed_on_error(tmp):  # a failure (disk full, Ctrl-C) leaves no partial folder behind
            meta = self._compute_generation(chain, g, tmp, start)
        self.publish(tmp, final)
        self.event(event="generation_done", chain=chain.id, generation=g, seconds=round(meta["seconds"], 2))
        return meta

    def _compute_generation(self, chain: Chain, g: int, tmp: Path, start: float) -> dict:
        cfg = self.cfg
        mitigations = build_mitigations(chain.mitigations, cfg.mitigation_params)
        mctx = MitigationContext(generation=g, seed=chain.seed, pool=self.split.pool, tokenizer=self.tokenizer)
        mix_stats: dict = {}
        loss_stats: dict = {}  # what the mitigations' token_weights did (training-side stage)
        clock = PhaseClock()
        if g == 0:
            gen0 = self.ensure_gen0(chain.seed)
            model = self.load_adapter(self.weights_dir(gen0))
            g0 = io.read_json(gen0 / "model_metrics.json")
            model_metrics, model_intervals = g0["metrics"], g0.get("intervals", {})
            train_stats = {k: v for k, v in g0.items() if k.startswith(("train_", "mix_tokens"))}
            manifest = io.read_json(gen0 / "mix.json")
            mctx.score, mctx.extra["model"] = self.score_fn(chain.seed, model), model
            with clock("sample"):
                samples, kept, sample_stats = self.gen0_samples(chain, mitigations, mctx)
        else:
            history = self.history(chain, g)
            mctx.extra.update(history=history, train_docs=cfg.data.train_docs)  # for mix-level mitigations
            rctx = RegimeContext(generation=g, train_docs=cfg.data.train_docs, real_fraction=real_fraction_at(cfg, self.real_fractions, g),
                                 pool=self.split.pool, fresh=self.split.fresh, synthetic=history,
                                 accumulate=chain.mode in ("accumulate", "accumulate_subsample"),
                                 real_fractions=tuple(self.real_fractions or ()),
                                 **(dict(peers=ecosystem.peer_history(self, chain, g), real_source=cfg.loop.ecosystem.real)
                                    if chain.regime == ecosystem.NAME else {}))
            mix = apply_mode(REGIMES.get(chain.regime)(rctx), chain.mode, rctx, derive_seed(chain.seed, "subsample"))
            for m in mitigations:
                mix, s = m.transform_mix(mix, mctx)
                if s:
                    mix_stats[m.name] = s
            if not mix:
                from .errors import MadbenchError

                raise MadbenchError(f"chain {chain.id}: generation {g} has an empty training mix; check the mitigations' parameters")
            prev = self.weights_dir(self.gen_dir(chain, g - 1) if g > 1 else self.gen0_dir(chain.seed))
            init = prev if cfg.loop.init_from == "previous" else None
            with clock("train"):
                model = weights.init_model(self.base, ecosystem.member_config(cfg, chain.seed), derive_seed(chain.seed, "lora-init", g), init)
                token_weights = loss_weights(mitigations, mctx)  # None unless a mitigation acts on the loss
                train_stats = train_lora(model, self.tokenizer, [d.text for d in mix], cfg,
                                         derive_seed(chain.seed, chain.regime, chain.mode, "order", g),
                                         desc=f"{chain.id} gen {g}: training", token_weights=token_weights)
                if token_weights is not None:
                    totals = train_stats.pop("token_stats", {})
                    loss_stats = {m.name: m.token_stats(totals.get(m.name, {})) for m in mitigations if m.acts_on_loss}
                model = train_stats.pop("model")
                weights.save(model, self.weights_dir(tmp), self.tokenizer, self.base)
            manifest = {"generation": g, "documents": [
                {"id": d.id, "source": "real" if d.id.startswith("h") else "synthetic"} for d in mix]}
            with clock("evaluate_model"):
                model_metrics, model_intervals = self.model_metrics(model, tmp)
            mctx.score = self.score_fn(chain.seed, model)
            with clock("sample"):  # includes the mitigations' sample filters (scoring, dedup)
                samples, kept, sample_stats = self.sample(model, chain, g, mitigations, mctx)
        kept_ids = {d.id for d in kept}
        io.write_jsonl(tmp / "samples.jsonl", [{"id": d.id, "text": d.text, "kept": d.id in kept_ids} for d in samples])
        io.write_json(tmp / "mix.json", manifest)
        # Diversity is scored on the first sampling.num_samples samples (the same prompts in every chain):
        # a mitigation that oversamples must not look less diverse just because it wrote more text.
        scored = samples[: cfg.sampling.num_samples]
        with clock("evaluate_samples"):
            sample_values, sample_intervals = self.sample_metrics([d.text for d in scored])
            metrics, intervals = {**model_metrics, **sample_values}, {**model_intervals, **sample_intervals}
        if self.metric_names("reference"):  # the generation-0 reference panel (madbench/metrics/tail.py)
            with clock("evaluate_reference"):
                metrics.update(self.reference_panel(chain, g, [d.text for d in scored], tmp, model))
        n_syn = sum(1 for d in manifest["documents"] if d["source"] == "synthetic")
        meta = {
            "chain": chain.id, "generation": g, "metrics": metrics,
            "intervals": intervals,  # 95% estimator intervals (madbench.metrics.intervals)
            "train_tokens": train_stats.get("train_tokens"), "train_docs": len(manifest["documents"]),
            "synthetic_fraction": n_syn / max(1, len(manifest["documents"])),
            **schedule_target(cfg, self.real_fractions, chain.regime, g),
            "train": train_stats, "mitigations": {"mix": mix_stats, "samples": sample_stats, **({"train": loss_stats} if loss_stats else {})},
            "num_samples": len(samples), "num_kept": len(kept), "num_scored": len(scored),
            "seconds": time.perf_counter() - start,
            "timing": clock.seconds,  # per phase; generation 0 reuses the shared training and model evaluation
        }
        io.write_json(tmp / "metrics.json", metrics)
        del model
        meta["integrity"] = integrity.record(tmp)  # byte counts and SHA-256 of every file; resume verifies them
        io.write_json(tmp / "meta.json", meta)  # written last: its presence marks the generation finished
        return meta

    def run(self, chains: Optional[List[Chain]] = None, on_generation=None) -> None:
        chains = chains or plan_chains(self.cfg)
        total = len(chains) * (self.cfg.loop.generations + 1)
        done = sum(1 for c in chains for g in range(self.cfg.loop.generations + 1) if (self.gen_dir(c, g) / "meta.json").is_file())
        times: List[float] = []
        self.check(chains)
        for chain, g in ecosystem.plan_steps(self.cfg, chains):  # chain by chain; ecosystems generation by generation
            self.state.wait_for_everyone()  # every process sees the same finished generations
            if (self.gen_dir(chain, g) / "meta.json").is_file():
                if chain.regime == ecosystem.NAME:  # resumed: metrics of a finished ecosystem generation
                    ecosystem.finish_generation(self, chain, g)
                continue
            start = time.perf_counter()
            meta = self.run_generation(chain, g)
            if chain.regime == ecosystem.NAME:
                ecosystem.finish_generation(self, chain, g)
            times.append(time.perf_counter() - start)
            done += 1
            eta = (sum(times) / len(times)) * (total - done)
            headline = [k for k in HEADLINE if meta["metrics"].get(k) is not None] or list(meta["metrics"])[:4]
            shown = " ".join(f"{k}={meta['metrics'][k]:.4g}" for k in headline)
            self.log(f"[{done}/{total}] {chain.id} gen {g}: {shown} ({times[-1]:.0f}s, ETA {eta / 60:.1f} min)")
            if on_generation and self.is_main:
                on_generation()
