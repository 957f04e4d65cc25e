"""Loop regimes: what a chain trains on, generation by generation, and how its chains are planned.

A regime is a :class:`Regime`: it owns its chain plan (``plan``), the order of its steps (``order``),
a generation's mix (``mix``; the plain ones are small pure policies ``RegimeContext -> list[Doc]``),
the config a chain trains with (``train_config``), a per-generation hook (``after_generation``), its
section of results.json (``collect``), its pre-flight checks (``check``) and which chains a sweep runs
as one job (``job``). A plain function registered with ``@REGIMES.register(name)`` (built in, or a
plug-in written that way) is wrapped by :class:`PolicyRegime`; :func:`regime` returns either as a Regime.
The loop, the results, the sweep and the validation ask the regime and know no regime by name.

A policy gets the generation index, the real data and the synthetic history and
returns the documents to train on. ``name/accumulate`` keeps every earlier
generation's synthetic data instead of only the last one (Gerstgrasser et al. 2024);
``name/accumulate_subsample`` accumulates the same way but trains each generation on a
seeded random subset of ``data.train_docs`` documents of it: the data grows, the compute
budget stays fixed (Gerstgrasser et al. 2024's accumulate-subsample).

  fully_synthetic         train only on the previous generation's samples (Shumailov et al. 2024)
  synthetic_augmentation  a fixed real set plus synthetic data (Alemohammad et al. 2023)
  fresh_data              a new real slice every generation plus synthetic data (Alemohammad et al. 2023)
  ecosystem               K models on shared real data plus all members' samples (madbench/loop/ecosystem.py:
                          a Regime of its own: a chain per member, run generation by generation)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.registry import Registry, did_you_mean
from madbench.loop.schedules import KEY as SCHEDULE_KEY, resolve

REGIMES = Registry("regime")
MODES = ("replace", "accumulate", "accumulate_subsample")


@dataclass(frozen=True)
class RegimeContext:
    generation: int  # >= 1; generation 0 always trains on real data
    train_docs: int  # size of the real set at generation 0 (the mix budget)
    real_fraction: float  # share of real documents in mixed regimes
    pool: List[Doc]  # real training pool
    fresh: List[Doc]  # real documents reserved for fresh slices
    synthetic: Dict[int, List[Doc]]  # generation -> its (mitigated) samples, for generations < current
    accumulate: bool
    # contamination schedule (madbench/loop/schedules.py): the real share of generations 1..G; () = real_fraction throughout
    real_fractions: Tuple[float, ...] = ()
    # loop.share_unit=tokens: docs -> trained tokens per doc (madbench/loop/shares.py); None = real_fraction counts documents
    count_tokens: Optional[Callable[[List[Doc]], List[int]]] = None


@dataclass(frozen=True)
class Chain:
    """One chain of a run: a regime (and its mode) with a seed and a set of mitigations; its own run folder."""

    regime: str
    mode: str
    seed: int
    mitigations: Tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.regime}-{self.mode}-s{self.seed}" + (f"-{'+'.join(self.mitigations)}" if self.mitigations else "")


class Regime:
    """What a regime decides; the defaults are those of a plain regime (one chain per seed, run chain by chain)."""

    name: str = ""
    mixes_real: bool = False  # mixes real with synthetic data: loop.synthetic_share schedules apply

    def plan(self, cfg, mode: str, seed: int, mitigations: Tuple[str, ...]) -> List[Chain]:
        """The chains of this regime for one seed and mitigation set."""
        return [Chain(self.name, mode, seed, mitigations)]

    def order(self, cfg, chains: List[Chain]) -> List[Tuple[Chain, int]]:
        """(chain, generation) in run order: chain by chain."""
        return [(c, g) for c in chains for g in range(cfg.loop.generations + 1)]

    def mix(self, rctx: RegimeContext, ctx: Any, chain: Chain) -> List[Doc]:
        """Generation ``rctx.generation``'s training documents; ``ctx`` is the run's StepContext (madbench/loop/context.py)."""
        return self(rctx)

    def __call__(self, rctx: RegimeContext) -> List[Doc]:
        raise NotImplementedError(f"regime '{self.name}' must define mix(rctx, ctx, chain) or __call__(rctx)")

    def train_config(self, cfg, chain: Chain):
        """The config ``chain`` trains with (its generation 0 included)."""
        return cfg

    def after_generation(self, ctx: Any, chain: Chain, g: int) -> None:
        """Called after each (chain, g) of this regime is finished, computed now or earlier (a resume)."""

    def collect(self, store, cfg, chains: List[Chain]) -> dict:
        """This regime's top-level section of results.json ({} for none)."""
        return {}

    def check(self, cfg) -> None:
        """Pre-flight checks when the run has this regime: one MadbenchError line naming what to fix."""

    def job(self, chain: Chain) -> str:
        """Chains with the same job id run as one sweep job (chains that learn from each other)."""
        return chain.id

    def uses_fresh(self, cfg) -> bool:
        """Takes a fresh real slice every generation with this config (pre-flight counts them)."""
        return False

    def fresh_option(self, cfg) -> str:
        """What to name when the fresh slices run out."""
        return self.name


class PolicyRegime(Regime):
    """A plain regime: a policy function ``RegimeContext -> list[Doc]`` (and its registered attributes)."""

    def __init__(self, name: str, policy):
        self.name, self.policy = name, policy
        self.mixes_real = bool(getattr(policy, "mixes_real", False))

    def uses_fresh(self, cfg) -> bool:
        return bool(getattr(self.policy, "uses_fresh", False))

    def __call__(self, rctx: RegimeContext) -> List[Doc]:
        return self.policy(rctx)


def regime(name: str) -> Regime:
    """The registered regime ``name`` as a :class:`Regime` (a registered function is wrapped)."""
    entry = REGIMES.get(name)
    return entry if isinstance(entry, Regime) else PolicyRegime(name, entry)


def regimes_of(cfg) -> List[Regime]:
    """The run's regimes (loop.regimes), each once, in order."""
    return [regime(name) for name in dict.fromkeys(parse_regime(spec)[0] for spec in cfg.loop.regimes)]


def parse_regime(spec: str) -> Tuple[str, str]:
    """'fully_synthetic/accumulate' -> ('fully_synthetic', 'accumulate')."""
    name, _, mode = str(spec).partition("/")
    REGIMES.get(name)
    mode = mode or "replace"
    if mode not in MODES:
        raise MadbenchError(f"unknown regime mode '{mode}' in '{spec}';{did_you_mean(mode, MODES)} use name/replace, name/accumulate or name/accumulate_subsample")
    return name, mode


def _synthetic(ctx: RegimeContext) -> List[Doc]:
    if ctx.accumulate:
        return [d for g in sorted(ctx.synthetic) for d in ctx.synthetic[g]]
    return list(ctx.synthetic.get(ctx.generation - 1, []))


def real_count(ctx: RegimeContext) -> int:
    return int(round(ctx.real_fraction * ctx.train_docs))


def fresh_slice(ctx: RegimeContext, generation: int) -> List[Doc]:
    n = real_count(ctx)
    start = (generation - 1) * n
    if ctx.real_fractions:  # scheduled: slices of varying size, still disjoint
        start = sum(int(round(f * ctx.train_docs)) for f in ctx.real_fractions[: generation - 1])
    if start + n > len(ctx.fresh):
        raise MadbenchError(
            f"fresh_data needs {n} new real documents per generation but the corpus runs out at generation {generation}; "
            "lower loop.real_fraction, data.train_docs or loop.generations, or use a bigger corpus"
        )
    return ctx.fresh[start : start + n]


def fresh_needed(cfg) -> int:
    """Fresh real documents the run's fresh_data chains use over all generations (0 without fresh_data)."""
    if not any(r.uses_fresh(cfg) for r in regimes_of(cfg)):
        return 0
    return sum(int(round(f * cfg.data.train_docs)) for f in resolve(cfg).real[1:])


def check_fresh(cfg, available: int) -> None:
    """Pre-flight: fail before any training when the corpus cannot feed every fresh slice."""
    need = fresh_needed(cfg)
    if need > available:
        raise MadbenchError(
            f"{next(r.fresh_option(cfg) for r in regimes_of(cfg) if r.uses_fresh(cfg))} needs {need} new real documents over {cfg.loop.generations} generations but the corpus leaves "
            f"{available} after data.eval_docs and data.train_docs; lower loop.real_fraction (or raise loop.synthetic_share), "
            "data.train_docs or loop.generations, raise data.max_docs, or use a bigger corpus"
        )


def check_schedule(cfg) -> None:
    """Pre-flight: the contamination schedule parses, and some regime of the run mixes real data (or it would do nothing)."""
    if not resolve(cfg).scheduled:
        return
    mixing = [name for name in REGIMES if regime(name).mixes_real]
    if not any(parse_regime(spec)[0] in mixing for spec in cfg.loop.regimes):
        raise MadbenchError(f"{SCHEDULE_KEY} sets the share of regimes that mix real and synthetic data ({', '.join(mixing)}); "
                            f"loop.regimes has none of them: add one or drop {SCHEDULE_KEY}")


@REGIMES.register("fully_synthetic")
def fully_synthetic(ctx: RegimeContext) -> List[Doc]:
    """Train only on synthetic data: the last generation's (replace) or all so far (accumulate)."""
    return _synthetic(ctx)


@REGIMES.register("synthetic_augmentation", mixes_real=True, token_share=True)
def synthetic_augmentation(ctx: RegimeContext) -> List[Doc]:
    """A fixed real set (the same documents every generation) plus synthetic data; with loop.share_unit=tokens
    the real set is the first documents whose trained tokens make real_fraction of the mix's (shares.py)."""
    synthetic = _trim(ctx, _synthetic(ctx))
    if ctx.count_tokens is None:
        return ctx.pool[: real_count(ctx)] + synthetic
    from madbench.loop.shares import real_documents_for_tokens

    k = real_documents_for_tokens(ctx.count_tokens(ctx.pool), sum(ctx.count_tokens(synthetic)), ctx.real_fraction,
                                  where=f"generation {ctx.generation}: ")
    return ctx.pool[:k] + synthetic


@REGIMES.register("fresh_data", mixes_real=True, uses_fresh=True)
def fresh_data(ctx: RegimeContext) -> List[Doc]:
    """A new, never-seen real slice every generation plus synthetic data."""
    return fresh_slice(ctx, ctx.generation) + _trim(ctx, _synthetic(ctx))


def _trim(ctx: RegimeContext, synthetic: List[Doc]) -> List[Doc]:
    """In replace mode keep the mix at ``train_docs``; accumulate grows on purpose."""
    if ctx.accumulate:
        return synthetic
    return synthetic[: max(0, ctx.train_docs - real_count(ctx))]


def apply_mode(mix: List[Doc], mode: str, ctx: RegimeContext, seed: int) -> List[Doc]:
    """accumulate_subsample: a seeded draw of ``train_docs`` documents from the accumulated mix; others unchanged."""
    if mode != "accumulate_subsample" or len(mix) <= ctx.train_docs:
        return mix
    import random

    rng = random.Random(f"subsample:{seed}:{ctx.generation}")
    keep = sorted(rng.sample(range(len(mix)), ctx.train_docs))
    return [mix[i] for i in keep]

