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
    "data.val_docs": 10_000_000,
    "train.epochs": 10_000,
    "train.batch_size": 65_536,
    "train.seq_len": 1_048_576,
    "lora.r": 65_536,
    "eval.task_docs": 10_000_000,
    "eval.batch_size": 65_536,
    # derived quantities: what the values above multiply into
    "sampling.requested": 1_000_000,  # samples drawn per generation: num_samples x every filter's oversampling
    "train.attention_cells": 1 << 33,  # train.batch_size x train.seq_len^2: the attention scores of one step
    "sweep.variants": 10_000,  # product of a sweep file's grid axes
}

# dotted key -> (low, high, low_inclusive, high_inclusive, why): the legal range of every bounded number.
# NaN and infinities are refused for every float of a config (and every number of mitigation_params).
RANGES = {
    "train.learning_rate": (0.0, 10.0, False, True, "a step size; 0 or less does not train"),
    "train.weight_decay": (0.0, 10.0, True, True, "a decay factor"),
    "train.max_grad_norm": (0.0, 1e6, True, True, "a gradient norm; 0 = no clipping"),
    "train.warmup_steps": (0, 10_000_000, True, True, "a count of steps"),
    "lora.alpha": (0.0, 1e6, False, True, "LoRA's scale alpha/r must be positive"),
    "lora.dropout": (0.0, 1.0, True, False, "a probability below 1 (1 drops everything)"),
    "sampling.temperature": (1e-3, 1e3, True, True, "logits / temperature overflow to inf below 1e-3"),
    "sampling.top_k": (0, 10_000_000, True, True, "0 = off, else the number of tokens kept"),
    "sampling.repetition_penalty": (0.0, 100.0, False, True, "a divisor of logits; 0 divides by zero"),
    "sampling.min_new_tokens": (0, None, True, True, "0 = off, else the new tokens a sample has before EOS may end it"),
    "sampling.num_beams": (1, None, True, True, "1 = sampling, more = beam search"),
    "sampling.batch_size": (1, None, True, True, "samples per decode batch"),
    "eval.batch_size": (1, None, True, True, "documents per evaluation batch"),
    "data.doc_words": (1, None, True, True, "words per passage"),
    "data.prompt_words": (1, None, True, True, "words of a real document used as a prompt"),
    "data.max_docs": (0, None, True, True, "0 = the whole corpus"),
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
    """(value, unit) of a bounded key: a list counts its entries; derived keys are computed."""
    if key == "chains":
        members = cfg.loop.ecosystem.members if any(r.split("/")[0] == "ecosystem" for r in cfg.loop.regimes) else 1
        chains = len(cfg.loop.seeds) * len(cfg.loop.regimes) * len(cfg.loop.mitigations)
        return chains * max(1, members), " chains" + (f" (x {members} ecosystem members)" if members > 1 else "")
    if key == "train.attention_cells":
        return cfg.train.batch_size * cfg.train.seq_len ** 2, " (train.batch_size x train.seq_len^2)"
    if key == "sweep.variants":
        return 0, ""  # checked by check_variants, before a sweep plans them
    section, _, name = key.partition(".")
    value = getattr(getattr(cfg, section), name)
    return (len(value), " entries") if isinstance(value, (tuple, list)) else (value, "")


def _over(key: str, value, unit: str, bound: int) -> None:
    if isinstance(value, (int, float)) and value > bound:
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        raise MadbenchError(
            f"{key} = {shown}{unit} is over madbench's bound of {bound} (so a typo cannot hang a run or exhaust "
            f"memory); to ask for it deliberately, set {ENV}={key}={int(value) if value < 1e18 else value}")


def check_bounds(cfg) -> None:
    limits = bounds()
    check_ranges(cfg)
    for key, bound in limits.items():
        if key in ("sampling.requested",):
            continue  # needs the mitigations' parameters checked first: validate calls check_derived
        value, unit = _value(cfg, key)
        _over(key, value, unit, bound)
    for i, rank in enumerate(cfg.loop.ecosystem.lora_ranks):  # parameters per ecosystem member
        _over(f"loop.ecosystem.lora_ranks[{i}]", rank, " (a member's LoRA rank, bounded as lora.r)", limits["lora.r"])


def check_derived(requested: float) -> None:
    """Bounds of quantities that need the mitigations built (config/validation.py computes them): ``requested``,
    the samples asked for per generation after every filter's oversampling."""
    _over("sampling.requested", requested, " samples per generation (num_samples x the filters' oversampling)",
          bounds()["sampling.requested"])


def check_variants(count: int) -> None:
    """A sweep's grid multiplies out to ``count`` variants: refused past the bound before any is planned."""
    _over("sweep.variants", count, " variants (the product of the grid's axes)", bounds()["sweep.variants"])


def _finite(value, key: str) -> None:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise MadbenchError(f"{key} = {value} is not a finite number; give a plain number")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite(v, f"{key}[{i}]")


def check_ranges(cfg) -> None:
    """NaN and infinities nowhere, every key of :data:`RANGES` inside its range: one line naming the key and why."""
    import dataclasses

    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if dataclasses.is_dataclass(section):
            for g in dataclasses.fields(section):
                _finite(getattr(section, g.name), f"{f.name}.{g.name}")
        else:
            _finite(section, f.name)
    for key, (low, high, low_in, high_in, why) in RANGES.items():
        section, _, name = key.partition(".")
        value = getattr(getattr(cfg, section), name)
        ok = (low is None or (value >= low if low_in else value > low)) and \
             (high is None or (value <= high if high_in else value < high))
        if not ok:
            span = f"{'[' if low_in else '('}{low:g}, {'...' if high is None else f'{high:g}'}{']' if high_in else ')'}"
            raise MadbenchError(f"{key} = {value!r} is outside {span} ({why})")


# path separators, control characters, bidi overrides/isolates and zero-width characters (a name that reads as another)
_NAME_BAD = re.compile(r"[/\\\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def hidden_characters(text: str) -> bool:
    """True when ``text`` holds bidi overrides or zero-width characters (it would display as something else)."""
    return bool(_HIDDEN.search(text))


_HIDDEN = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def check_name(name: str, what: str = "name") -> None:
    """A run or sweep name becomes a folder name: no path separators, no '..', no control characters."""
    if not name or name in (".", "..") or ".." in name or _NAME_BAD.search(name) or len(name) > 200:
        safe = re.sub(r"[^A-Za-z0-9._+=,-]+", "-", name.replace("..", ".")).strip("-.")[:80] or "run"
        raise MadbenchError(f"{what} {ascii(name[:80])} is not a plain name (it becomes a folder: no '/', '\\', '..', "
                            f"control, bidi-override or zero-width characters); use for example {what}={safe}, and --output-dir to choose where it goes")


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
