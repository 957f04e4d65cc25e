"""The recursive loop: train, evaluate, sample, repeat, for every chain of a run.

    madbench run                      # default experiment, embedded SmolLM2 + KJV
    madbench run --preset smoke       # every regime, 2 generations, tiny model
    madbench run --resume runs/default

A chain is (regime, mode, seed, mitigations); :func:`plan_chains` lists a config's chains and
:class:`Runner` runs them generation by generation. One generation is a short sequence of steps
(madbench/loop/steps.py: build the mix, train, evaluate the model, sample, score the samples, record);
the run folder's layout, atomic publishing and is-done checks belong to madbench/results/run_store.py;
progress, the event log, results writing and trackers hang on callbacks (madbench/loop/callbacks.py).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from madbench.loop import steps
from madbench.models import weights
from madbench.loop.callbacks import Callback, CallbackList, EventLog, ProgressLog
from madbench.loop.context import Models, StepContext
from madbench.config.run_config import RunConfig
from madbench.data.corpus import CorpusSplit, load_split
from madbench.headline import HEADLINE  # shown in the progress log (one definition: madbench/headline.py)
from madbench.mitigations import MitigationContext, build_mitigations
from madbench.models.base_model import load_base, resolve_model
from madbench.loop.regimes import Chain, Regime, parse_regime, regime
from madbench.results import integrity
from madbench.results.run_store import RunStore
from madbench.loop.schedules import resolve
from madbench.loop.steps import derive_seed  # noqa: F401  (importable from here, as before)




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


def plan_chains(cfg: RunConfig) -> List[Chain]:
    """Every chain of a run: for each seed, regime and mitigation set, the regime's own plan (Regime.plan)."""
    chains = []
    for seed in cfg.loop.seeds:
        for spec in cfg.loop.regimes:
            name, mode = parse_regime(spec)
            for mset in cfg.loop.mitigations:
                chains.extend(regime(name).plan(cfg, mode, seed, tuple(mset)))
    return chains


def plan_steps(cfg: RunConfig, chains: List[Chain]) -> List[Tuple[Chain, int]]:
    """(chain, generation) in run order: the chains of regimes that run chain by chain first, in plan order;
    then each regime with an order of its own (Regime.order: an ecosystem runs generation by generation)."""
    own = {c.regime for c in chains if type(regime(c.regime)).order is not Regime.order}
    steps = Regime.order(None, cfg, [c for c in chains if c.regime not in own])
    for name in dict.fromkeys(c.regime for c in chains if c.regime in own):
        steps += regime(name).order(cfg, [c for c in chains if c.regime == name])
    return steps


class Runner:
    """Owns the loaded base model and the run's shared state; runs chains generation by generation."""

    def __init__(self, cfg: RunConfig, run_dir: Path, log=print, callbacks: Sequence[Callback] = ()):
        from accelerate import PartialState

        self.cfg, self.store = cfg, RunStore(run_dir)
        # Under `accelerate launch` every process runs this loop: all take the same decisions and
        # compute the same samples; training is data-parallel; only the main process writes.
        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.is_main = self.state.is_main_process
        self.log = log if self.is_main else (lambda *a, **k: None)
        # side effects, main process only: the event log always; progress, results and trackers from run()
        self.callbacks = CallbackList([EventLog(self.store), *callbacks] if self.is_main else [])
        self.split: CorpusSplit = load_split(cfg)
        self.schedule = resolve(cfg)  # the real share of every generation (fresh slices were checked in config/preflight.py)
        with self.state.main_process_first():  # builds/converts a cached model once
            self.model_path = resolve_model(cfg, self.split)
        self.tokenizer, self.base = load_base(self.model_path, cfg)
        # what every step reads (madbench/loop/context.py); the model provider keeps each seed's reference model
        self.ctx = StepContext(cfg, self.split, self.tokenizer, self.base, self.store, self.schedule,
                               Models(self.base, cfg, self.store), self.is_main)
        # what each seed's generation 0 trains with: its chains' regime decides (an ecosystem member's LoRA rank)
        self.gen0_config = {c.seed: regime(c.regime).train_config(cfg, c) for c in reversed(plan_chains(cfg))}

    @property
    def run_dir(self) -> Path:
        return self.store.root

    # ------------------------------------------------------------------ generation 0
    def ensure_gen0(self, seed: int) -> Path:
        """Train generation 0 on real data once per seed (shared by all chains)."""
        final = self.store.gen0_dir(seed)
        if self.store.gen0_done(seed):
            return final
        start = time.perf_counter()
        with self.store.publishing(final, self.is_main) as tmp:
            steps.train_gen0(self.ctx, seed, self.gen0_config.get(seed, self.cfg), tmp, start)
        self.state.wait_for_everyone()
        self.callbacks.on_gen0_end(seed, time.perf_counter() - start)
        return final

    # ------------------------------------------------------------------ one generation
    def run_generation(self, chain: Chain, g: int) -> Optional[dict]:
        if self.store.generation_done(chain.id, g):
            return None  # finished earlier: never recomputed, never overwritten
        start = time.perf_counter()
        with self.store.publishing(self.store.gen_dir(chain.id, g), self.is_main) as tmp:  # a failure leaves nothing behind
            meta = self._compute_generation(chain, g, tmp, start)
        self.state.wait_for_everyone()
        self.callbacks.on_generation_end(chain, g, meta)
        return meta

    def _compute_generation(self, chain: Chain, g: int, tmp: Path, start: float) -> dict:
        ctx = self.ctx
        mitigations = build_mitigations(chain.mitigations, self.cfg.mitigation_params)
        mctx = MitigationContext(generation=g, seed=chain.seed, pool=self.split.pool, tokenizer=self.tokenizer)
        clock = PhaseClock()
        if g == 0:  # the seed's shared generation 0; its samples are cached per sampling setup
            mix, trained, model_scores = steps.reuse_gen0(ctx, self.ensure_gen0(chain.seed))
            steps.use_scorers(ctx, mctx, chain.seed, trained.model)
            mctx.model = trained.model
            with clock("sample"):
                samples = steps.gen0_samples(ctx, chain, mitigations, mctx)
        else:  # mix mitigations score with the model that wrote the latest samples, loaded only if they ask
            previous = ctx.models.previous_weights(chain, g)
            steps.use_scorers(ctx, mctx, chain.seed, load_current=lambda: weights.load(self.base, self.cfg, previous))
            mix = steps.build_mix(ctx, chain, g, mitigations, mctx)
            with clock("train"):
                trained = steps.train(ctx, chain, g, mix, mitigations, mctx, tmp)
            with clock("evaluate_model"):
                model_scores = steps.evaluate_model(ctx, trained.model, tmp, trained.scores)
            steps.use_scorers(ctx, mctx, chain.seed, trained.model)
            mctx.model = trained.model
            with clock("sample"):  # includes the mitigations' sample filters (scoring, dedup)
                samples = steps.sample(ctx, trained.model, chain, g, mitigations, mctx)
        sample_scores = steps.score_samples(ctx, chain, g, samples, trained, tmp, clock)
        return steps.record(ctx, chain, g, tmp, mix, trained, model_scores, samples, sample_scores, clock, start)

    # ------------------------------------------------------------------ chains
    def run(self, chains: Optional[List[Chain]] = None, callbacks: Sequence[Callback] = ()) -> None:
        """Every (chain, generation) not finished yet, in order; ``callbacks`` (main process) see each step."""
        chains = chains or plan_chains(self.cfg)
        gens = range(self.cfg.loop.generations + 1)
        hooks = CallbackList([ProgressLog(self.log, HEADLINE), *callbacks] if self.is_main else [])
        hooks.on_run_begin(len(chains) * len(gens), sum(self.store.generation_done(c.id, g) for c in chains for g in gens))
        integrity.verify_chains(self.store, chains, self.cfg.loop.generations)  # never build on a damaged finished generation
        if any(not self.store.generation_done(c.id, g) for c in chains for g in gens):  # samples to build on: the new format
            for c, g in ((c, g) for c in chains for g in gens if self.store.generation_done(c.id, g)):
                self.store.check_sample_format(c.id, g)
        for chain, g in plan_steps(self.cfg, chains):  # chain by chain; regimes with their own order (ecosystems) after
            self.state.wait_for_everyone()  # every process sees the same finished generations
            if self.store.generation_done(chain.id, g):
                regime(chain.regime).after_generation(self.ctx, chain, g)  # resumed: e.g. a finished ecosystem generation's metrics
                continue
            start = time.perf_counter()
            meta = self.run_generation(chain, g)
            regime(chain.regime).after_generation(self.ctx, chain, g)
            hooks.on_step_end(chain, g, meta, time.perf_counter() - start)
