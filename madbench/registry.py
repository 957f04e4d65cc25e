"""One name -> object registry for every named choice, with decorator registration, lazy entries and "did you mean".

Regimes, mitigations, metrics, presets, tracks, corpora, models, sampling backends, trackers,
sweep backends and lm-eval models all use it (``madbench list`` shows each kind)::

    REGIMES = Registry("regime")

    @REGIMES.register("fully_synthetic")
    def fully_synthetic(ctx): ...

    REGIMES.get("fuly_synthetic")  # MadbenchError: unknown regime 'fuly_synthetic'; did you mean 'fully_synthetic'? ...

    LM_EVAL_MODELS.add_lazy("hf", "madbench.evaluation.lm_models:hf_lm")  # imported on the first get("hf")

A lazy entry is a ``"module:object"`` string (as lm-eval's registry keeps its models): the module is
imported when the name is first looked up, so a heavy or optional dependency costs nothing until used.
``discover(package)`` imports every module of a package, so a new file there registers itself with
no import edit elsewhere (metrics/ and mitigations/ use it).
"""

from __future__ import annotations

import contextvars
import difflib
import importlib
import pkgutil
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar

from madbench.errors import MadbenchError

T = TypeVar("T")
BUILTIN = "builtin"
# where entries registered right now come from: 'builtin', or a plug-in while madbench.plugins loads it
CURRENT_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("madbench_registry_origin", default=BUILTIN)


def did_you_mean(name: str, choices) -> str:
    """Return ' did you mean 'x'?' for the closest choice, or '' if none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


def _origin_of(obj: Any) -> str:
    """'builtin' for madbench's own modules (even when first imported while a plug-in loads), else the plug-in."""
    module = getattr(obj, "__module__", "") or ""
    if module == "madbench" or module.startswith("madbench."):
        return BUILTIN
    origin = CURRENT_ORIGIN.get()
    return origin if origin != BUILTIN else f"module {module}"


class Lazy(str):
    """A ``"module:object"`` placeholder for an entry that is imported on first use."""

    def load(self) -> Any:
        module, _, attr = self.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        return obj


def discover(package: str) -> None:
    """Import every module of ``package`` (its registrations run): a new file needs no import edit elsewhere."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


class Registry:
    """Maps names to objects; duplicate registration is a programming error."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}
        self._origins: Dict[str, str] = {}  # name -> 'builtin' or the plug-in that registered it

    def register(self, name: Optional[str] = None, **attrs: Any) -> Callable[[T], T]:
        """Decorator: register the object under ``name`` (default: its __name__).

        Extra keyword attributes (a preset's ``description``) are set on the object so that
        callers can read them back. Metrics have typed specs instead (madbench/metrics/specs.py).
        """

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "name", None) or obj.__name__  # type: ignore[attr-defined]
            for attr, value in attrs.items():
                setattr(obj, attr, value)
            self.add(key, obj, _origin_of(obj))
            return obj

        return decorator

    def add(self, key: str, obj: Any, origin: str = BUILTIN) -> None:
        """Register ``obj`` under ``key``; a plug-in may not take a name that is already taken."""
        if key in self._items:
            if origin == BUILTIN:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            if self._items[key] is obj:
                return  # a plug-in module's decorator and its entry point name the same object
            theirs = self._origins.get(key, BUILTIN)
            owner = "a built-in" if theirs == BUILTIN else f"the {theirs}"
            raise MadbenchError(f"{self.kind} '{key}' clashes with {owner} {self.kind} of that name; rename it")
        self._items[key] = obj
        self._origins[key] = origin

    def add_lazy(self, key: str, target: str, origin: str = BUILTIN) -> None:
        """Register ``"module:object"`` under ``key``; imported on the first ``get(key)``."""
        if ":" not in target:
            raise ValueError(f"{self.kind} '{key}': a lazy entry is 'module:object', got {target!r}")
        self.add(key, Lazy(target), origin)

    def target(self, name: str) -> Optional[str]:
        """The ``"module:object"`` of a lazy entry not imported yet, else None (``madbench list`` shows it)."""
        obj = self._items.get(name)
        return str(obj) if isinstance(obj, Lazy) else None

    def _resolve(self, name: str) -> Any:
        obj = self._items[name]
        if not isinstance(obj, Lazy):
            return obj
        try:
            loaded = obj.load()
        except (ImportError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise MadbenchError(f"{self.kind} '{name}' ({obj}) failed to import: {type(exc).__name__}: {first}") from None
        self._items[name] = loaded
        return loaded

    def registered(self) -> list:
        """The names in the order they were registered (built-ins first)."""
        return list(self._items)

    def remove(self, key: str) -> None:
        self._items.pop(key, None)
        self._origins.pop(key, None)

    def origin(self, name: str) -> str:
        """'builtin', or where the plug-in that registered ``name`` came from."""
        return self._origins.get(name, BUILTIN)

    def get(self, name: str) -> Any:
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise MadbenchError(
                f"unknown {self.kind} '{name}';{did_you_mean(name, self._items)} known: {known}"
            )
        return self._resolve(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self):
        """(name, object) sorted by name; lazy entries are imported."""
        return [(name, self._resolve(name)) for name in sorted(self._items)]

    def entries(self):
        """(name, object or its lazy "module:object" placeholder), sorted by name: nothing is imported."""
        return sorted(self._items.items())

    def names(self) -> list:
        return sorted(self._items)
