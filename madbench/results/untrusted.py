"""One bounded reader for every JSON file madbench did not just write itself (submissions, merge parts, run folders
copied from elsewhere, files given to ``madbench monitor``).

    python -c "from madbench.results import untrusted; print(untrusted.read('leaderboard/submissions/smoke-tiny-761528f493e4.json')['run'])"

Before any code touches a value it refuses, with one line naming the file and the field (a JSON path such as
``chains/0/generations/1/metrics/perplexity``): a file over ``max_bytes``, text that is not UTF-8 JSON, nesting
deeper than ``max_depth``, a string or key longer than ``max_string``, an array or object with more than
``max_items`` entries, an integer beyond float range (``10**400`` overflows every float operation downstream),
a literal that overflows to infinity (``1e400``), ``NaN`` / ``Infinity`` (unless ``nonfinite=True``: madbench's
own writer spells a metric without data as NaN) and a key given twice in one object.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from madbench.errors import MadbenchError

MAX_DEPTH = 64  # a submission nests 7 deep (chains/0/generations/0/intervals/perplexity/0)
MAX_STRING = 1 << 20
MAX_ITEMS = 1 << 20
RUN_FILE_BYTES = 256 * 1024 * 1024  # a run folder's own files (results.json, sample caches)
_FLOAT_MAX = sys.float_info.max


class UntrustedJSON(MadbenchError):
    """A refused file: ``file``, ``field`` (a JSON path, or '(file)') and a one-line ``message``."""

    def __init__(self, file: str, field: str, message: str):
        super().__init__(f"{file}: field '{field}': {message}")
        self.file, self.field, self.message = file, field, message


class _Refused:
    """A value refused while parsing; the walk names its field."""

    def __init__(self, why: str):
        self.why = why


class _Pairs(dict):
    duplicate: Any = None


def _int(text: str):
    digits = len(text.lstrip("-"))
    if digits > 309:
        return _Refused(f"integer {text[:20]}... with {digits} digits is beyond float range; not a measurement")
    value = int(text)
    if abs(value) > _FLOAT_MAX:
        return _Refused(f"integer {text[:20]}... is beyond float range; not a measurement")
    return value


def _float(text: str):
    value = float(text)
    if math.isinf(value):
        return _Refused(f"number {text[:40]} is beyond float range; not a measurement")
    return value


def _pairs(pairs: list) -> dict:
    out = _Pairs()
    for key, value in pairs:
        if key in out and out.duplicate is None:
            out.duplicate = key
        out[key] = value
    return out


def _walk(data: Any, source: str, max_depth: int, max_string: int, max_items: int, nonfinite: bool) -> Any:
    """Check every value (iteratively: no recursion limit of its own); return plain dicts."""
    top = [data]
    stack = [(top, 0, data, "", 0)]
    while stack:
        parent, key, value, path, depth = stack.pop()
        where = path or "(top level)"
        if depth > max_depth:
            raise UntrustedJSON(source, where, f"nests too deeply (over {max_depth} levels); not a madbench file")
        if isinstance(value, _Refused):
            raise UntrustedJSON(source, where, value.why)
        if isinstance(value, str):
            if len(value) > max_string:
                raise UntrustedJSON(source, where, f"a string of {len(value)} characters is over the {max_string}-character limit")
        elif isinstance(value, float):
            if not math.isfinite(value) and not nonfinite:
                raise UntrustedJSON(source, where, f"{value} is not a finite number; not a measurement")
        elif isinstance(value, list):
            if len(value) > max_items:
                raise UntrustedJSON(source, where, f"{len(value)} entries is over the {max_items}-entry limit")
            stack.extend((value, i, v, f"{path}/{i}" if path else str(i), depth + 1) for i, v in enumerate(value))
        elif isinstance(value, dict):
            if len(value) > max_items:
                raise UntrustedJSON(source, where, f"{len(value)} keys is over the {max_items}-key limit")
            if getattr(value, "duplicate", None) is not None:
                raise UntrustedJSON(source, where, f"duplicate key '{str(value.duplicate)[:60]}' in one JSON object; keep one value")
            plain = dict(value)
            parent[key] = plain
            for k, v in plain.items():
                if len(k) > max_string:
                    raise UntrustedJSON(source, where, f"a key of {len(k)} characters is over the {max_string}-character limit")
                stack.append((plain, k, v, f"{path}/{k}" if path else k, depth + 1))
    return top[0]


def loads(raw: bytes | str, source: str = "(input)", *, max_depth: int = MAX_DEPTH, max_string: int = MAX_STRING,
          max_items: int = MAX_ITEMS, nonfinite: bool = False) -> Any:
    """Parse and bound ``raw`` (see the module docstring); raises :class:`UntrustedJSON`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UntrustedJSON(source, "(file)", "is not text (binary or corrupted; not UTF-8)") from None

    def constant(name: str):
        return float(name) if nonfinite else _Refused(f"{name} is not valid JSON; not a measurement")

    try:
        data = json.loads(text, parse_constant=constant, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise UntrustedJSON(source, "(file)", f"is not valid JSON (truncated? line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise UntrustedJSON(source, "(file)", f"nests too deeply (over {max_depth} levels); not a madbench file") from None
    except ValueError as exc:
        raise UntrustedJSON(source, "(file)", f"is not valid JSON ({' '.join(str(exc).split())[:100]})") from None
    return _walk(data, source, max_depth, max_string, max_items, nonfinite)


def read(path: str | os.PathLike, *, max_bytes: int = RUN_FILE_BYTES, **bounds) -> Any:
    """The bounded JSON value of the file at ``path``; a file over ``max_bytes`` is refused unread."""
    path = Path(path)
    try:
        if not path.is_file():
            raise UntrustedJSON(str(path), "(file)", "is missing" if not path.exists() else "not a regular file")
        size = os.stat(path).st_size
        if size > max_bytes:
            raise UntrustedJSON(str(path), "(file)", f"{size} bytes is over the {max_bytes}-byte limit")
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UntrustedJSON(str(path), "(file)", f"cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise UntrustedJSON(str(path), "(file)", f"over the {max_bytes}-byte limit")
    return loads(raw, str(path), **bounds)
