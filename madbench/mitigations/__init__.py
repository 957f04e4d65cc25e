"""Mitigation plug-ins: transforms of sampling or of a generation's training mix.

A mitigation is a class registered by name; a chain composes a list of them
(``loop.mitigations=[mix_real+dedup]``) with parameters from
``mitigation_params.<name>.<param>``. Hooks, all optional:

  * ``oversample()``            factor by which to sample more (filters keep a fraction)
  * ``logits_processors(ctx)``  sampling-time processors (e.g. a watermark)
  * ``filter_samples(docs, ctx)``  synthetic docs -> (kept docs, stats), before they enter history
  * ``transform_mix(docs, ctx)``   training mix -> (new mix, stats)

Every hook's stats dict is recorded per generation in results.json.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .corpus import Doc
from .errors import MadbenchError
from .registry import Registry, did_you_mean

MITIGATIONS = Registry("mitigation")


@dataclass
class MitigationContext:
    generation: int
    seed: int
    pool: List[Doc]  # real training pool (generation 0's data comes from here)
    tokenizer: Any = None
    # score(texts, which) -> per-text NLL/token; which is 'current' (the model that sampled) or 'reference' (generation 0)
    score: Optional[Callable[[List[str], str], List[float]]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class Mitigation:
    """Base class: every hook is a no-op. ``params`` lists defaults of the parameters."""

    name = "base"
    card = ""  # what it does, which paper, its parameters
    params: Dict[str, Any] = {}

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.params)
        if unknown:
            key = sorted(unknown)[0]
            raise MadbenchError(
                f"unknown parameter '{key}' for mitigation '{self.name}';{did_you_mean(key, self.params)} "
                f"parameters: {', '.join(sorted(self.params)) or 'none'}"
            )
        self.p = {**self.params, **overrides}

    def oversample(self) -> float:
        return 1.0

    def logits_processors(self, ctx: MitigationContext) -> list:
        return []

    def filter_samples(self, docs: List[Doc], ctx: MitigationContext) -> Tuple[List[Doc], dict]:
        return docs, {}

    def transform_mix(self, docs: List[Doc], ctx: MitigationContext) -> Tuple[List[Doc], dict]:
        return docs, {}


def build_mitigations(names, params: Dict[str, Dict[str, Any]]) -> List[Mitigation]:
    return [MITIGATIONS.get(name)(**params.get(name, {})) for name in names]


@MITIGATIONS.register("mix_real")
class MixReal(Mitigation):
    """Replace a fraction of every mix with original human documents (Shumailov et al. 2024 kept 10%)."""

    name = "mix_real"
    card = "Keeps `fraction` of each generation's training mix as original human data drawn from the training pool. Shumailov et al., Nature 2024."
    params = {"fraction": 0.1}

    def transform_mix(self, docs, ctx):
        k = int(round(self.p["fraction"] * len(docs)))
        rng = random.Random(f"mix_real:{ctx.seed}:{ctx.generation}")
        real = rng.sample(ctx.pool, min(k, len(ctx.pool)))
        kept = docs[: len(docs) - len(real)]
        return kept + real, {"real_added": len(real), "synthetic_removed": len(docs) - len(kept)}
