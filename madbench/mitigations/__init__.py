"""Mitigation plug-ins: transforms of sampling or of a generation's training mix.

A mitigation is a class registered by name; a chain composes a list of them
(``loop.mitigations=[mix_real+dedup]``) with parameters from
``mitigation_params.<name>.<param>``::

    madbench list mitigations
    madbench run --preset tiny 'loop.mitigations=[none,verifier_filter]' mitigation_params.verifier_filter.keep_fraction=0.5

Hooks, all optional:

  * ``oversample()``            factor by which to sample more (filters keep a fraction)
  * ``logits_processors(ctx)``  sampling-time processors (e.g. a watermark)
  * ``filter_samples(docs, ctx)``  synthetic docs -> (kept docs, stats), before they enter history
  * ``transform_mix(docs, ctx)``   training mix -> (new mix, stats)
  * ``token_weights(logits, targets, ctx)``  training loss: per-token weights for one batch -> (weights | None, counts)

``token_weights`` is the training-side stage (generations >= 1; generation 0 is shared
by every chain of a seed and always trains on the plain loss). ``logits`` [B, T-1, V]
(float, no grad) predict ``targets`` [B, T-1] (-100 = ignored); the step's loss becomes
sum(w * nll) / sum(w) (or / the number of target tokens where a mitigation's
``loss_over_all_tokens()`` says so). Its counts are summed over the generation's steps and passed
through ``token_stats(totals)`` into results.json under ``mitigations.train.<name>``.
A chain with no mitigation overriding it trains exactly as before (same code path).

``ctx`` is a :class:`MitigationContext` (typed fields, no untyped bag): ``generation``, ``seed``,
``pool`` (the real training pool), ``tokenizer``, ``score(texts, which)`` (per-text NLL under the
'current' or the generation-0 'reference' model; in ``transform_mix`` 'current' is the model that wrote the
latest samples, loaded on first use), ``score_entropy(texts, which)`` (per-text NLL and predictive entropy), ``history`` ({generation: kept samples}, generations
>= 1), ``train_docs`` (the mix budget) and ``model`` (the model that samples). Documents are
:class:`madbench.data.corpus.Doc`: whether one is real is ``doc.source`` ("human" or "model", also
``doc.is_human``), never its id; samples carry their ``generation`` and producing chain (``model``).
A sample's ``text`` is its generated continuation (what a mitigation scores or filters); the real prompt
it continued is ``doc.prompt`` (``doc.prompt_source``: the pool document it was cut from).

Every hook's stats dict is recorded per generation in results.json. Each class
declares ``target_metric``: the metric it is meant to improve over the
unmitigated baseline (checked by ``madbench regress``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.registry import Registry, did_you_mean

MITIGATIONS = Registry("mitigation")


@dataclass
class MitigationContext:
    generation: int
    seed: int
    pool: List[Doc]  # real training pool (generation 0's data comes from here)
    tokenizer: Any = None
    # score(texts, which) -> per-text NLL/token; which is 'current' (the model that sampled) or 'reference' (generation 0)
    score: Optional[Callable[[List[str], str], List[float]]] = None
    # score_entropy(texts, which) -> per-text (NLL/token, predictive entropy/token), same models as score
    score_entropy: Optional[Callable[[List[str], str], List[Tuple[float, float]]]] = None
    # set by the loop (madbench/loop/steps.py) for generations >= 1: every earlier generation's kept samples
    history: Dict[int, List[Doc]] = field(default_factory=dict)
    train_docs: int = 0  # the mix budget (data.train_docs)
    model: Any = None  # the model that samples this generation


def _kind(value) -> str:
    """What a parameter's default asks for; '' = anything (None, lists, ...)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return ""


def _as_kind(mitigation: str, key: str, default, value):
    """``value`` checked against the kind of its default (a numeric string like '1e-3' is read as a number)."""
    kind = _kind(default)
    if kind in ("a number", "an integer") and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
        else:
            value = int(value) if kind == "an integer" and value.is_integer() else value
    if kind and _kind(value) != kind and not (kind == "a number" and _kind(value) == "an integer"):
        raise MadbenchError(f"mitigation_params.{mitigation}.{key} must be {kind}, got {value!r}")
    return value


class Mitigation:
    """Base class: every hook is a no-op. ``params`` lists defaults of the parameters."""

    name = "base"
    card = ""  # what it does, which paper, its parameters
    paper = ""  # short citation
    target_metric = "perplexity"  # the metric this mitigation should improve over the baseline
    params: Dict[str, Any] = {}

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.params)
        if unknown:
            key = sorted(unknown)[0]
            raise MadbenchError(
                f"unknown parameter '{key}' for mitigation '{self.name}';{did_you_mean(key, self.params)} "
                f"parameters: {', '.join(sorted(self.params)) or 'none'}"
            )
        overrides = {key: _as_kind(self.name, key, self.params[key], value) for key, value in overrides.items()}
        self.p = {**self.params, **overrides}
        try:
            self.check()
        except (TypeError, ValueError) as e:  # a plug-in's check() tripping over a value of the wrong type
            raise MadbenchError(f"mitigation '{self.name}': a parameter has a value of the wrong type ({e}); "
                                f"parameters and defaults: {self.params}") from None

    def check(self) -> None:
        """Validate ``self.p``; raise MadbenchError naming the parameter."""

    def _fraction(self, key: str, low_open: bool = True) -> float:
        value = float(self.p[key])
        ok = (0.0 < value <= 1.0) if low_open else (0.0 <= value <= 1.0)
        if not ok:
            span = "(0, 1]" if low_open else "[0, 1]"
            raise MadbenchError(f"mitigation_params.{self.name}.{key} must be in {span}, got {value}")
        return value

    def oversample(self) -> float:
        return 1.0

    def logits_processors(self, ctx: MitigationContext) -> list:
        return []

    def filter_samples(self, docs: List[Doc], ctx: MitigationContext) -> Tuple[List[Doc], dict]:
        return docs, {}

    def transform_mix(self, docs: List[Doc], ctx: MitigationContext) -> Tuple[List[Doc], dict]:
        return docs, {}

    def token_weights(self, logits, targets, ctx: MitigationContext) -> Tuple[Any, dict]:
        return None, {}

    def token_stats(self, totals: dict) -> dict:
        """The recorded stats from ``token_weights``' counts summed over a generation (default: the sums)."""
        return totals

    def loss_over_all_tokens(self) -> bool:
        """True: the step's loss is sum(w * nll) / (target tokens), not / sum(w) (a weight-0 token counts as 0)."""
        return False

    @property
    def acts_on_loss(self) -> bool:
        return type(self).token_weights is not Mitigation.token_weights


def loss_weights(mitigations: List[Mitigation], ctx: MitigationContext):
    """The training step's ``token_weights`` callable for a chain's mitigations, or None when none acts on the loss."""
    active = [m for m in mitigations if m.acts_on_loss]
    if not active:
        return None

    def weights(logits, targets):
        combined, counts = None, {}
        for m in active:
            w, c = m.token_weights(logits, targets, ctx)
            if w is not None:
                combined = w if combined is None else combined * w
            counts[m.name] = c
        return combined, counts

    weights.over_all_tokens = any(m.loss_over_all_tokens() for m in active)  # the loss divides by every token
    return weights


def build_mitigations(names, params: Dict[str, Dict[str, Any]]) -> List[Mitigation]:
    return [MITIGATIONS.get(name)(**params.get(name, {})) for name in names]


def mitigation_card(name: str) -> dict:
    """Name, card, paper, target metric and default parameters of a registered mitigation."""
    cls = MITIGATIONS.get(name)
    return {"name": name, "card": cls.card, "paper": cls.paper, "target_metric": cls.target_metric,
            "params": dict(cls.params)}


from madbench.registry import discover  # noqa: E402

discover(__name__)  # every module here registers its mitigations: a new file needs no edit in this one
from madbench.mitigations.mixing import MixReal  # noqa: E402,F401  (kept importable from here)
