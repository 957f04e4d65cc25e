"""Loop regimes: small pure policies that choose a generation's training mix.

A regime gets the generation index, the real data and the synthetic history and
returns the documents to train on. ``name/accumulate`` keeps every earlier
generation's synthetic data instead of only the last one (Gerstgrasser et al. 2024);
``name/accumulate_subsample`` accumulates the same way but trains each generation on a
seeded random subset of ``data.train_docs`` documents of it: the data grows, the compute
budget stays fixed (Gerstgrasser et al. 2024's accumulate-subsample).

  fully_synthetic         train only on the previous generation's samples (Shumailov et al. 2024)
  synthetic_augmentation  a fixed real set plus synthetic data (Alemohammad et al. 2023)
  fresh_data              a new real slice every generation plus synthetic data (Alemohammad et al. 2023)
  ecosystem               K models on shared real data plus all members' samples (madbench/loop/ecosystem.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

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
    # ecosystem regime (madbench/loop/ecosystem.py): {member: {generation: kept samples}} of every member, and the real part
    peers: Dict[int, Dict[int, List[Doc]]] = field(default_factory=dict)
    real_source: str = "fixed"  # 'fixed' (pool prefix) or 'fresh' (a new slice each generation)


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
    names = {parse_regime(spec)[0] for spec in cfg.loop.regimes}
    if "fresh_data" not in names and not ("ecosystem" in names and cfg.loop.ecosystem.real == "fresh"):
        return 0
    return sum(int(round(f * cfg.data.train_docs)) for f in resolve(cfg).real[1:])


def check_fresh(cfg, available: int) -> None:
    """Pre-flight: fail before any training when the corpus cannot feed every fresh slice."""
    need = fresh_needed(cfg)
    if need > available:
        raise MadbenchError(
            f"{'fresh_data' if any(parse_regime(s)[0] == 'fresh_data' for s in cfg.loop.regimes) else 'loop.ecosystem.real=fresh'} needs {need} new real documents over {cfg.loop.generations} generations but the corpus leaves "
            f"{available} after data.eval_docs and data.train_docs; lower loop.real_fraction (or raise loop.synthetic_share), "
            "data.train_docs or loop.generations, raise data.max_docs, or use a bigger corpus"
        )


def check_schedule(cfg) -> None:
    """Pre-flight: the contamination schedule parses, and some regime of the run mixes real data (or it would do nothing)."""
    if not resolve(cfg).scheduled:
        return
    mixing = [name for name, fn in REGIMES.items() if getattr(fn, "mixes_real", False)]
    if not any(parse_regime(spec)[0] in mixing for spec in cfg.loop.regimes):
        raise MadbenchError(f"{SCHEDULE_KEY} sets the share of regimes that mix real and synthetic data ({', '.join(mixing)}); "
                            f"loop.regimes has none of them: add one or drop {SCHEDULE_KEY}")


@REGIMES.register("fully_synthetic")
def fully_synthetic(ctx: RegimeContext) -> List[Doc]:
    """Train only on synthetic data: the last generation's (replace) or all so far (accumulate)."""
    return _synthetic(ctx)


@REGIMES.register("synthetic_augmentation", mixes_real=True)
def synthetic_augmentation(ctx: RegimeContext) -> List[Doc]:
    """A fixed real set (the same documents every generation) plus synthetic data."""
    return ctx.pool[: real_count(ctx)] + _trim(ctx, _synthetic(ctx))


@REGIMES.register("fresh_data", mixes_real=True)
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


from madbench.loop import ecosystem  # noqa: E402,F401  (registers the ecosystem regime)
