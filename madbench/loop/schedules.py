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
from typing import Any, List, Optional

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


def real_fractions(cfg) -> Optional[List[float]]:
    """Real share for generations 1..G from the config's schedule, or None (then loop.real_fraction holds)."""
    values = shares(cfg.loop.synthetic_share, cfg.loop.generations)
    return None if values is None else [1.0 - s for s in values]


def real_fraction_at(cfg, fractions: Optional[List[float]], g: int) -> float:
    """The real share of generation g's mix: the schedule's (``fractions`` from :func:`real_fractions`) or loop.real_fraction."""
    return fractions[g - 1] if fractions and g >= 1 else cfg.loop.real_fraction


def schedule_target(cfg, fractions: Optional[List[float]], regime: str, g: int) -> dict:
    """``{"synthetic_share_target": s}`` for a scheduled mixing regime (generation 0 is real: 0), else {}."""
    from madbench.loop.regimes import REGIMES

    if fractions is None or not getattr(REGIMES.get(regime), "mixes_real", False):
        return {}
    return {"synthetic_share_target": round(1.0 - real_fraction_at(cfg, fractions, g), 6) if g >= 1 else 0.0}


def check(cfg) -> None:
    """Pre-flight: the schedule parses, and some regime of the run mixes real data (or it would do nothing)."""
    if shares(cfg.loop.synthetic_share, cfg.loop.generations) is None:
        return
    from madbench.loop.regimes import REGIMES, parse_regime

    mixing = [name for name, fn in REGIMES.items() if getattr(fn, "mixes_real", False)]
    if not any(parse_regime(spec)[0] in mixing for spec in cfg.loop.regimes):
        raise MadbenchError(f"{KEY} sets the share of regimes that mix real and synthetic data ({', '.join(mixing)}); "
                            f"loop.regimes has none of them: add one or drop {KEY}")
