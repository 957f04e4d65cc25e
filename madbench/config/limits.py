"""Bounds on what a config may ask for, checked before anything is planned or allocated.

    madbench run loop.generations=100000                       # refused: over the bound of 1000
    MADBENCH_LIMITS=loop.generations=5000 madbench run ...     # lifted deliberately, for this key only

A config file is capped in size (:data:`MAX_CONFIG_BYTES`) and in how far YAML aliases may
expand it (:data:`MAX_YAML_VALUES`); python tags are refused by name. Run and sweep names
become folder names, so they may not hold path separators or ``..``. Every refusal is one
line naming the bound and how to lift it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from madbench.errors import MadbenchError

MAX_CONFIG_BYTES = 1 << 20  # a config file is a few kB; 1 MiB is far beyond any real one
MAX_YAML_VALUES = 100_000  # values after alias expansion (an alias bomb expands exponentially)
ENV = "MADBENCH_LIMITS"

# dotted key -> largest value (or number of entries, for lists) a config may ask for
BOUNDS = {
    "loop.generations": 1000,
    "loop.seeds": 1000,
    "loop.regimes": 100,
    "loop.mitigations": 100,
    "chains": 10_000,  # seeds x regimes x mitigation sets
    "sampling.num_samples": 100_000,
    "sampling.max_new_tokens": 32_768,
    "sampling.batch_size": 65_536,
    "sampling.num_beams": 64,
    "data.doc_words": 100_000,
    "data.prompt_words": 10_000,
    "data.max_docs": 100_000_000,
    "data.train_docs": 10_000_000,
    "data.eval_docs": 10_000_000,
    "train.epochs": 10_000,
    "train.batch_size": 65_536,
    "train.seq_len": 1_048_576,
    "lora.r": 65_536,
    "eval.task_docs": 10_000_000,
    "eval.batch_size": 65_536,
}


def bounds() -> dict:
    """BOUNDS with the deliberate lifts of ``$MADBENCH_LIMITS`` ('key=value,key=value') applied."""
    out = dict(BOUNDS)
    for item in filter(None, (s.strip() for s in os.environ.get(ENV, "").split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in out or not value.strip().isdigit():
            raise MadbenchError(f"{ENV} entry '{item}' must be KEY=INTEGER with KEY one of: {', '.join(out)}")
        out[key.strip()] = int(value)
    return out


def _value(cfg, key: str) -> tuple:
    """(value, unit) of a bounded key: a list counts its entries."""
    if key == "chains":
        return len(cfg.loop.seeds) * len(cfg.loop.regimes) * len(cfg.loop.mitigations), " chains"
    section, _, name = key.partition(".")
    value = getattr(getattr(cfg, section), name)
    return (len(value), " entries") if isinstance(value, (tuple, list)) else (value, "")


def check_bounds(cfg) -> None:
    for key, bound in bounds().items():
        value, unit = _value(cfg, key)
        if isinstance(value, (int, float)) and value > bound:
            raise MadbenchError(
                f"{key} = {value}{unit} is over madbench's bound of {bound} (so a typo cannot hang a run or exhaust "
                f"memory); to ask for it deliberately, set {ENV}={key}={value}")


_NAME_BAD = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_name(name: str, what: str = "name") -> None:
    """A run or sweep name becomes a folder name: no path separators, no '..', no control characters."""
    if not name or name in (".", "..") or ".." in name or _NAME_BAD.search(name) or len(name) > 200:
        safe = re.sub(r"[^A-Za-z0-9._+=,-]+", "-", name.replace("..", ".")).strip("-.")[:80] or "run"
        raise MadbenchError(f"{what} {name[:80]!r} is not a plain name (it becomes a folder: no '/', '\\', '..' or "
                            f"control characters); use for example {what}={safe}, and --output-dir to choose where it goes")


def check_file_size(path: Path) -> None:
    size = Path(path).stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise MadbenchError(f"config file '{path}' is {size} bytes, over the {MAX_CONFIG_BYTES}-byte limit of a config; "
                            "is it the right file?")


def _count(data: Any, budget: int) -> int:
    """Values in ``data`` counting shared (aliased) objects each time they appear; stops past ``budget``."""
    seen, stack = 0, [data]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > budget:
            break
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return seen


def load_yaml(text: str, where: str) -> Any:
    """yaml.safe_load with python tags named as such and alias expansion bounded."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        if "python/" in str(exc.problem or ""):
            raise MadbenchError(f"{where} uses a python tag (!!python/...): python tags are not allowed in configs; "
                                "write plain values")
        raise
    if _count(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise MadbenchError(f"{where} expands to more than {MAX_YAML_VALUES} values (YAML aliases '*name' repeating "
                            "anchors?); write the values out, without nested aliases")
    return data
