"""Metric registry: small functions with a name and a direction.

A metric takes a :class:`MetricContext` and returns a float (or a dict of named
floats for a metric family). Register with::

    @METRICS.register("distinct_2", higher_is_better=True, needs="samples")
    def distinct_2(ctx): ...

``needs`` says what the metric reads: 'samples' (the generation's synthetic
texts), 'model' (the in-memory model), 'human' (held-out human text too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..registry import Registry

METRICS = Registry("metric")


@dataclass
class MetricContext:
    samples: List[str]  # this generation's synthetic documents
    human: List[str]  # held-out human documents (the same every generation)
    model: Any = None  # the generation's model (peft or plain), in eval mode
    tokenizer: Any = None
    batch_size: int = 16
    cache: Dict[str, Any] = field(default_factory=dict)  # shared between metrics of one evaluation


def metric_info(name: str) -> dict:
    fn = METRICS.get(name)
    return {
        "name": name,
        "higher_is_better": getattr(fn, "higher_is_better", None),
        "needs": getattr(fn, "needs", "samples"),
        "description": (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
    }


def compute_metrics(names, ctx: MetricContext, progress: Optional[Callable[[str], None]] = None) -> Dict[str, float]:
    """Compute the named metrics; a metric returning a dict contributes several keys."""
    out: Dict[str, float] = {}
    for name in names:
        if progress:
            progress(name)
        value = METRICS.get(name)(ctx)
        if isinstance(value, dict):
            out.update({k: float(v) for k, v in value.items()})
        else:
            out[name] = float(value)
    return out


from . import lexical, perplexity  # noqa: E402,F401  (registers metrics)
