"""Dotted keys of nested mappings: ``{'loop': {'generations': 3}}`` -> ``{'loop.generations': 3}``.

The keys are the ones ``key=value`` overrides address (``madbench run loop.generations=3``). Used to
compare configs (report's pooling notes, tracks' frozen protocol; regress with keep=) and to log them::

    flatten(cfg.to_dict())["sampling.top_p"]                        # 0.9
    flatten(cfg.to_dict(), keep=("mitigation_params",))             # that mapping stays one value
"""

from __future__ import annotations

from typing import Any, Dict, Iterable


def flatten(data: dict, prefix: str = "", keep: Iterable[str] = ()) -> Dict[str, Any]:
    """Nested mappings become dotted keys. An empty mapping stays a value (no key is lost), and so does a
    mapping whose dotted key is in ``keep`` (compare it whole: a key only one side has is still seen)."""
    keep = tuple(keep)
    out: Dict[str, Any] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in keep:
            out.update(flatten(value, name + ".", keep))
        else:
            out[name] = value
    return out
