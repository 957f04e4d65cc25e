"""A tiny name -> object registry with decorator registration and "did you mean" hints.

Regimes, mitigations, metrics, presets and corpora all use it::

    REGIMES = Registry("regime")

    @REGIMES.register("fully_synthetic")
    def fully_synthetic(ctx): ...

    REGIMES.get("fuly_synthetic")  # MadbenchError: unknown regime 'fuly_synthetic'; did you mean 'fully_synthetic'? ...
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar

from .errors import MadbenchError

T = TypeVar("T")


def did_you_mean(name: str, choices) -> str:
    """Return ' did you mean 'x'?' for the closest choice, or '' if none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


class Registry:
    """Maps names to objects; duplicate registration is a programming error."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}

    def register(self, name: Optional[str] = None, **attrs: Any) -> Callable[[T], T]:
        """Decorator: register the object under ``name`` (default: its __name__).

        Extra keyword attributes (for example ``higher_is_better=False``) are set on
        the object so that callers can read them back.
        """

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "name", None) or obj.__name__  # type: ignore[attr-defined]
            if key in self._items:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            for attr, value in attrs.items():
                setattr(obj, attr, value)
            self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> Any:
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise MadbenchError(
                f"unknown {self.kind} '{name}';{did_you_mean(name, self._items)} known: {known}"
            )
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self):
        return sorted(self._items.items())

    def names(self) -> list:
        return sorted(self._items)
