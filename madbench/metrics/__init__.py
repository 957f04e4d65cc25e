"""Metric registry: small functions with a name and a direction.

A metric takes a :class:`MetricContext` and returns a float (or a dict of named
floats for a metric family). Register with::

    @METRICS.register("distinct_2", higher_is_better=True, needs="samples", value_range=(0.0, 1.0))
    def distinct_2(ctx): ...

``needs`` says what the metric reads: 'samples' (the generation's synthetic
texts), 'model' (the in-memory model), 'human' (held-out human text too), 'reference'
(the samples scored by the generation-0 model: tail.py).
A metric returns None where it is undefined (for example HD-D of fewer than 42 words).
Each name has a frozen :class:`MetricSpec` (specs.py); read it with ``spec(name)``
and select by what metrics read with ``names_needing(names, needs)``. The headline
panel (quality, diversity and the rest, shown first everywhere) is ``madbench/headline.py``.

The panel: lexical.py (distinct-n, entropy, Zipf, compression), richness.py (MTLD,
HD-D), repetition.py (self-BLEU, looping 4-grams, duplicates), semantic.py (embedding
distance, Vendi), shift.py (Fréchet distance, MAUVE vs human text), perplexity.py, tail.py (per-sample
perplexity under generation 0), rare.py (tails against the held-out human text).
``evaluate_module_path(name)`` gives Hugging Face ``evaluate`` modules over the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from madbench.errors import MadbenchError
from madbench.headline import DIVERSITY, HEADLINE, QUALITY  # noqa: F401  (the headline panel, re-exported)
from madbench.registry import did_you_mean
from madbench.metrics.specs import NEEDS, MetricRegistry, MetricSpec  # noqa: F401  (re-exported)

METRICS = MetricRegistry()


@dataclass
class MetricContext:
    samples: List[str]  # this generation's synthetic documents
    human: List[str]  # held-out human documents (the same every generation)
    model: Any = None  # the generation's model (peft or plain), in eval mode
    tokenizer: Any = None
    batch_size: int = 16
    cache: Dict[str, Any] = field(default_factory=dict)  # shared between metrics of one evaluation
    scores: Any = None  # the model's ScoreCache (madbench/models/scores.py): what its weights already scored


def spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of a registered metric (unknown names fail with a "did you mean" hint)."""
    return METRICS.spec(name)


def names_needing(names, needs) -> List[str]:
    """The metrics of ``names`` (in order) that read ``needs``: one of NEEDS, or a tuple of them."""
    wanted = (needs,) if isinstance(needs, str) else tuple(needs)
    return [n for n in names if METRICS.spec(n).needs in wanted]


def metric_info(name: str) -> dict:
    """{'name', 'higher_is_better', 'needs', 'description'} of a registered metric (results.json's metrics_info)."""
    return METRICS.spec(name).info()


def _number(value) -> Optional[float]:
    return None if value is None else float(value)  # None: undefined here (too few samples or words)


def compute_metrics(names, ctx: MetricContext, progress: Optional[Callable[[str], None]] = None) -> Dict[str, Optional[float]]:
    """Compute the named metrics; a metric returning a dict contributes several keys."""
    out: Dict[str, Optional[float]] = {}
    for name in names:
        if progress:
            progress(name)
        value = METRICS.get(name)(ctx)
        if isinstance(value, dict):
            out.update({k: _number(v) for k, v in value.items()})
        else:
            out[name] = _number(value)
        ctx.cache.setdefault("metric_keys", {})[name] = list(value) if isinstance(value, dict) else [name]
    return out


HF_MODULES = ("madbench_diversity", "madbench_shift")  # evaluate modules in madbench/hf_metrics/


def evaluate_module_path(name: str) -> str:
    """Absolute path of a local Hugging Face ``evaluate`` module: ``evaluate.load(evaluate_module_path(name))``."""
    if name not in HF_MODULES:
        raise MadbenchError(f"unknown evaluate module '{name}';{did_you_mean(name, HF_MODULES)} known: {', '.join(HF_MODULES)}")
    return str(Path(__file__).resolve().parent.parent / "hf_metrics" / name / f"{name}.py")


def compute_with_intervals(names, ctx: MetricContext, progress=None):
    """(values, 95% intervals) of the named metrics; see :mod:`madbench.metrics.intervals`."""
    from madbench.metrics.intervals import compute_intervals

    values = compute_metrics(names, ctx, progress)
    return values, compute_intervals(names, ctx, values)


from madbench.registry import discover  # noqa: E402

discover(__name__)  # every module here registers its metrics: a new file needs no edit in this one
