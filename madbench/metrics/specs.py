"""Metric specs: a metric is a frozen :class:`MetricSpec` (name, function, direction, what it reads).

The metric registry stores one spec per name; readers ask it, never the function::

    from madbench.metrics import METRICS, names_needing, spec
    spec("distinct_2").higher_is_better                  # True
    names_needing(cfg.eval.metrics, "model")             # ['perplexity']
    madbench list metrics                                # one line per spec

Built-in and plug-in metrics register with the decorator
``@METRICS.register(name, higher_is_better=..., needs=..., value_range=(0.0, 1.0))``; an installed entry point
may instead name a plain function carrying ``higher_is_better`` / ``needs`` attributes
(the :class:`madbench.plugins.MetricFn` contract, and optionally ``interval_resamples``),
read once, here, into its spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from madbench.errors import MadbenchError
from madbench.registry import BUILTIN, Registry, _origin_of

# what a metric reads: 'samples' (the generation's synthetic texts), 'model' (the in-memory model),
# 'human' (held-out human text too), 'reference' (the samples scored by the generation-0 model: tail.py)
NEEDS: Tuple[str, ...] = ("samples", "model", "human", "reference")


def first_line(fn: Any) -> str:
    """The first line of a docstring ('' without one): a metric's description."""
    return ((getattr(fn, "__doc__", None) or "").strip().splitlines() or [""])[0]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[[Any], Any]  # MetricContext -> float, dict of floats (a family), or None (undefined here)
    higher_is_better: Optional[bool] = None  # None: no direction
    needs: str = "samples"  # one of NEEDS
    description: str = ""  # one line (the docstring's first line by default)
    interval_resamples: Optional[int] = None  # bootstrap calls for its interval (metrics/intervals.py); None: the default
    value_range: Tuple[Optional[float], Optional[float]] = (None, None)  # (low, high) it can take; None: unbounded


    def __post_init__(self):
        if self.higher_is_better not in (True, False, None):
            raise MadbenchError(f"metric '{self.name}': higher_is_better must be True, False or None")
        if self.needs not in NEEDS:
            raise MadbenchError(f"metric '{self.name}': needs must be 'samples', 'model' or 'human', got {self.needs!r}")
        low, high = self.value_range
        if low is not None and high is not None and low >= high:
            raise MadbenchError(f"metric '{self.name}': value_range must be (low, high) with low < high, got {self.value_range}")

    def clip(self, interval) -> list:
        """``interval`` ([low, high]) clipped inside the metric's ``value_range``: no interval leaves it."""
        return clip_to(self.value_range, interval)

    def __call__(self, ctx) -> Any:
        return self.fn(ctx)

    def info(self) -> dict:
        """The ``metrics_info`` record of results.json."""
        return {"name": self.name, "higher_is_better": self.higher_is_better, "needs": self.needs,
                "description": self.description}


def clip_to(value_range, interval) -> list:
    """[low, high] clipped inside ``value_range`` ((low, high), either None for unbounded)."""
    low, high = value_range
    lo, hi = float(interval[0]), float(interval[1])
    return [lo if low is None else min(max(low, lo), high if high is not None else math.inf),
            hi if high is None else max(min(high, hi), low if low is not None else -math.inf)]


def from_attributes(name: str, fn: Any) -> MetricSpec:
    """The spec of a plain function carrying the plug-in contract's attributes (an entry point's metric)."""
    return MetricSpec(name, fn, getattr(fn, "higher_is_better", None), getattr(fn, "needs", "samples"), first_line(fn),
                      getattr(fn, "interval_resamples", None), tuple(getattr(fn, "value_range", (None, None))))


class MetricRegistry(Registry):
    """The metric registry: ``get(name)`` gives the function, ``spec(name)`` its :class:`MetricSpec`."""

    def __init__(self):
        super().__init__("metric")
        self._specs: dict = {}

    def register(self, name: Optional[str] = None, *, higher_is_better: Optional[bool] = None, needs: str = "samples",
                 description: Optional[str] = None, interval_resamples: Optional[int] = None,
                 value_range: Tuple[Optional[float], Optional[float]] = (None, None)) -> Callable:
        """Decorator: register ``fn`` under ``name`` (default: its __name__) with its direction and needs."""

        def decorator(fn):
            key = name or fn.__name__
            spec = MetricSpec(key, fn, higher_is_better, needs, first_line(fn) if description is None else description,
                              interval_resamples, tuple(value_range))
            self.add(key, fn, _origin_of(fn), spec=spec)
            return fn

        return decorator

    def add(self, key: str, obj: Any, origin: str = BUILTIN, spec: Optional[MetricSpec] = None) -> None:
        if key in self._items:  # a clash (raises) or the same object again (an entry point naming a decorated function)
            super().add(key, obj, origin)
            return
        spec = spec or from_attributes(key, obj)
        super().add(key, obj, origin)
        self._specs[key] = spec

    def remove(self, key: str) -> None:
        super().remove(key)
        self._specs.pop(key, None)

    def spec(self, name: str) -> MetricSpec:
        """The spec of a registered metric; an unknown name fails with a "did you mean" hint."""
        self.get(name)
        return self._specs[name]

    def specs(self) -> list:
        """Every spec, by name."""
        return [self._specs[n] for n in self.names()]
