"""What a plug-in entry of each kind must be, checked when it loads (madbench/plugins.py loads them).

    python -c "from madbench.plugin_contracts import check_entry; check_entry('metrics', 'mine', my_fn)"
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, List, Optional, Protocol, runtime_checkable

from madbench.errors import MadbenchError


@runtime_checkable
class RegimeFn(Protocol):
    def __call__(self, ctx: Any) -> list: ...  # RegimeContext -> the generation's training mix (list of Doc)


@runtime_checkable
class MetricFn(Protocol):
    higher_is_better: Optional[bool]
    needs: str

    def __call__(self, ctx: Any) -> Any: ...  # MetricContext -> float, dict of floats, or None (undefined)


@runtime_checkable
class CorpusFn(Protocol):
    def __call__(self) -> List[str]: ...


@runtime_checkable
class ModelFn(Protocol):
    def __call__(self, cfg: Any, split: Any) -> str: ...  # RunConfig, CorpusSplit -> model folder or hub name


SINGULAR = {"corpora": "corpus", "lm_eval_models": "lm-eval model", "monitor_rules": "monitor rule"}


def _arity_ok(fn, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
        return True
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: trust them
        return True


def check_entry(kind: str, name: str, obj: Any) -> None:
    """Raise MadbenchError when ``obj`` breaks the contract of ``kind``."""
    if kind == "mitigations":
        from madbench.mitigations import Mitigation

        if not (inspect.isclass(obj) and issubclass(obj, Mitigation)):
            raise MadbenchError(f"mitigation '{name}' must be a subclass of madbench.mitigations.Mitigation, got {obj!r}")
        if not isinstance(obj.params, dict):
            raise MadbenchError(f"mitigation '{name}': params must be a dict of default values")
        if getattr(obj, "name", None) in (None, "base"):
            obj.name = name  # error messages and results name it
        try:
            obj()
        except MadbenchError as exc:
            raise MadbenchError(f"mitigation '{name}' does not build with its default params: {exc}")
        return
    if kind == "monitor_rules":
        rule = obj() if inspect.isclass(obj) else obj
        if not callable(getattr(rule, "first_alarm", None)) or not isinstance(getattr(rule, "needs", None), (tuple, list)):
            raise MadbenchError(f"monitor rule '{name}' must have needs (a tuple of metric names) and first_alarm(panel, alpha)")
        return
    if not callable(obj):
        raise MadbenchError(f"{SINGULAR.get(kind, kind[:-1])} '{name}' must be callable, got {obj!r}")
    if kind == "regimes" and not _arity_ok(obj, 1):
        raise MadbenchError(f"regime '{name}' must take one argument (a RegimeContext) and return the training mix")
    if kind == "metrics":
        if not _arity_ok(obj, 1):
            raise MadbenchError(f"metric '{name}' must take one argument (a MetricContext)")
        from madbench.metrics import METRICS
        from madbench.metrics.specs import from_attributes

        # registered: its MetricSpec (built, and its direction checked, when it registered); else the function's attributes
        spec = METRICS.spec(name) if name in METRICS and METRICS.get(name) is obj else from_attributes(name, obj)
        if spec.needs not in ("samples", "model", "human"):
            raise MadbenchError(f"metric '{name}': needs must be 'samples', 'model' or 'human', got {spec.needs!r}")
    if kind == "corpora" and not _arity_ok(obj, 0):
        raise MadbenchError(f"corpus '{name}' must take no arguments and return a list of texts")
    if kind == "trackers":
        missing = [m for m in ("log_config", "log_metrics", "log_artifacts", "close") if not callable(getattr(obj, m, None))]
        if not inspect.isclass(obj) or missing:
            raise MadbenchError(f"tracker '{name}' must be a class with log_config, log_metrics, log_artifacts and close "
                                f"(madbench.reporting.tracker_backends.Tracker){'; missing ' + ', '.join(missing) if missing else ''}")
        if not _arity_ok(obj, 2):
            raise MadbenchError(f"tracker '{name}' must be built as cls(run_dir, name, run_id=None)")
    if kind == "lm_eval_models":
        lm_api = sys.modules.get("lm_eval.api.model")  # a plug-in's LM class imported it; never imported just to check
        if inspect.isclass(obj) and lm_api is not None and not issubclass(obj, lm_api.LM):
            raise MadbenchError(f"lm-eval model '{name}' must be a subclass of lm_eval.api.model.LM, or a factory returning one")
        if not _arity_ok(obj, 2):
            raise MadbenchError(f"lm-eval model '{name}' must be built as entry(model, tokenizer, batch_size=N)")
    if kind == "models" and not _arity_ok(obj, 2):
        raise MadbenchError(f"model '{name}' must take (cfg, split) and return a model folder or hub name")
