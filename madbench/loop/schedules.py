"""Contamination schedules: the synthetic share of the training mix, generation by generation.

The worry behind model collapse is a web whose AI-written share keeps growing. With
``loop.synthetic_share`` the mixing regimes (``synthetic_augmentation``: a fixed real
set, ``fresh_data``: a fresh real slice each generation) follow a schedule instead of
the constant ``1 - loop.real_fraction``::

    madbench run --preset tiny loop.regimes=[fresh_data] loop.synthetic_share=linear:0.1:0.9
    madbench run --preset tiny loop.regimes=[synthetic_augmentation] 'loop.synthetic_share=[0.1,0.3,0.5,0.7]'

Forms (generation 0 always trains on real data; g runs over 1..G = loop.generations):

  0.7                         the same share every generation
  linear:START:END            START at generation 1, END at generation G, a straight line between
  logistic:START:END[:MID[:K]]  START + (END - START) / (1 + exp(-K (g - MID))); MID defaults to the middle
                              generation (G + 1) / 2, K (steepness per generation) to 1
  [0.1, 0.3, 0.5, ...]        one share per generation (at least G values; extra values are ignored)

A share is the fraction of the ``data.train_docs`` budget that is synthetic; the
real part is ``round((1 - share) * train_docs)`` documents. In ``/accumulate`` mode the
real part follows the schedule and the synthetic part accumulates, as without one.
Every generation records the share it actually trained on (``synthetic_fraction``)
and the scheduled one (``synthetic_share_target``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from madbench.errors import MadbenchError

FORMS = ("linear", "logistic")
KEY = "loop.synthetic_share"


def _number(text: Any, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MadbenchError(f"{KEY}: {what} must be a number, got {text!r}; e.g. {KEY}=linear:0.1:0.9")
    if not math.isfinite(value):
        raise MadbenchError(f"{KEY}: {what} must be a finite number, got {text!r}")
    return value


def _share(value: float, what: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise MadbenchError(f"{KEY}: {what} is {value:g}, outside [0, 1]; a synthetic share is a fraction of the mix")
    return value


def shares(spec: Any, generations: int) -> Optional[List[float]]:
    """The synthetic share for generations 1..``generations`` (index 0 = generation 1); None when unset.

    Raises one clear MadbenchError for a malformed spec, a value outside [0, 1] or a list too short.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, bool):
        raise MadbenchError(f"{KEY} must be a share, a schedule or a list, got {spec!r}")
    if isinstance(spec, str) and "," in spec and ":" not in spec:  # '0.1,0.3,0.5' from a shell without brackets
        spec = [s.strip() for s in spec.strip("[]").split(",") if s.strip()]
    if isinstance(spec, (list, tuple)):
        values = [_share(_number(v, f"value {i + 1}"), f"value {i + 1} (generation {i + 1})") for i, v in enumerate(spec)]
        if len(values) < generations:
            raise MadbenchError(f"{KEY} lists {len(values)} shares but loop.generations={generations} needs one per generation "
                                f"(generation 0 is always real); add {generations - len(values)} more or lower loop.generations")
        return values[:generations]
    if isinstance(spec, (int, float)):
        return [_share(_number(spec, "the share"), "the share")] * generations
    text = str(spec).strip()
    form, _, rest = text.partition(":")
    if not rest:
        return [_share(_number(text, "the share"), "the share")] * generations
    if form not in FORMS:
        from madbench.registry import did_you_mean

        raise MadbenchError(f"{KEY}: unknown schedule '{form}';{did_you_mean(form, FORMS)} use a number, linear:START:END, "
                            "logistic:START:END[:MID[:K]] or a list [0.1,0.3,...]")
    parts = rest.split(":")
    wanted = (2, 2) if form == "linear" else (2, 4)
    if not wanted[0] <= len(parts) <= wanted[1]:
        usage = "linear:START:END" if form == "linear" else "logistic:START:END[:MID[:K]]"
        raise MadbenchError(f"{KEY}='{text}' has {len(parts)} values after '{form}:'; write {usage}")
    start = _share(_number(parts[0], "START"), "START")
    end = _share(_number(parts[1], "END"), "END")
    if form == "linear":
        span = max(1, generations - 1)
        return [start + (end - start) * (g - 1) / span for g in range(1, generations + 1)]
    mid = _number(parts[2], "MID") if len(parts) > 2 else (generations + 1) / 2
    k = _number(parts[3], "K") if len(parts) > 3 else 1.0
    return [start + (end - start) / (1.0 + _exp(-k * (g - mid))) for g in range(1, generations + 1)]


def _exp(x: float) -> float:
    """math.exp, but inf where it overflows (a steep K: the share is START before MID and END after)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class Schedule:
    """The real share of every generation's mix, resolved once per run (:func:`resolve`).

    ``real[g]`` for g = 0..G: generation 0 trains on real data (1.0); generations 1..G follow
    ``loop.synthetic_share`` when it is set (``scheduled``), else ``loop.real_fraction`` throughout.
    """

    real: Tuple[float, ...]
    scheduled: bool

    def target(self, g: int, mixes_real: bool) -> dict:
        """``{"synthetic_share_target": s}`` for a scheduled regime that mixes real data (generation 0: 0), else {}."""
        if not self.scheduled or not mixes_real:
            return {}
        return {"synthetic_share_target": round(1.0 - self.real[g], 6) if g >= 1 else 0.0}


def resolve(cfg) -> Schedule:
    """The run's :class:`Schedule` from ``loop.synthetic_share`` (or ``loop.real_fraction``) and ``loop.generations``."""
    values = shares(cfg.loop.synthetic_share, cfg.loop.generations)
    real = [cfg.loop.real_fraction] * cfg.loop.generations if values is None else [1.0 - s for s in values]
    return Schedule((1.0, *real), values is not None)
