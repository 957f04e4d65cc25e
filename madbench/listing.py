"""List every named choice madbench knows, and where each came from.

    madbench list
    madbench list metrics
    madbench list mitigations                          # with the metric each one targets
    madbench --plugin my_filter.py list mitigations   # the origin column says 'file .../my_filter.py'

Kinds: regimes, mitigations, metrics, presets, tracks, corpora, models, sampling_backends,
trackers, sweep_backends, lm_eval_models: each one registry (madbench/registry.py).
Origins: ``builtin``, ``entry point DIST VERSION`` (an installed plug-in package),
``file PATH`` or ``module NAME`` (``--plugin`` / ``plugins:``). A lazy entry not imported
yet shows its ``module:object`` (listing imports nothing heavy).
"""

from __future__ import annotations

import importlib

from madbench.registry import Lazy

# kind -> (module, registry attribute); the order `madbench list` prints them in
SECTIONS = {
    "regimes": ("madbench.loop.regimes", "REGIMES"),
    "mitigations": ("madbench.mitigations", "MITIGATIONS"),
    "metrics": ("madbench.metrics", "METRICS"),
    "presets": ("madbench.config.presets", "PRESETS"),
    "corpora": ("madbench.data.corpus", "CORPORA"),
    "models": ("madbench.models.base_model", "MODELS"),
    "tracks": ("madbench.config.tracks", "TRACKS"),
    "sampling_backends": ("madbench.generation.backends", "SAMPLING_BACKENDS"),
    "trackers": ("madbench.reporting.trackers", "TRACKERS"),
    "sweep_backends": ("madbench.experiments.backends", "SWEEP_BACKENDS"),
    "lm_eval_models": ("madbench.evaluation.lm_models", "LM_EVAL_MODELS"),
    "monitor_rules": ("madbench.monitoring", "MONITOR_RULES"),
}


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", choices=list(SECTIONS), help="show only this kind")


def first_line(obj) -> str:
    if isinstance(obj, Lazy):
        return f"(lazy: {obj})"
    return ((getattr(obj, "card", "") or obj.__doc__ or "").strip().splitlines() or [""])[0]


def _metric_line(spec) -> str:
    direction = {True: "higher is better", False: "lower is better"}.get(spec.higher_is_better, "no direction")
    from madbench.metrics.intervals import APPROXIMATE

    note = f" (interval approximate: {APPROXIMATE[spec.name]})" if spec.name in APPROXIMATE else ""
    return f"[{direction}] {spec.description}{note}"


DESCRIBE = {
    "regimes": lambda f: first_line(f) + " (modes: /replace, /accumulate)",
    "mitigations": lambda c: f"[targets {c.target_metric}] {first_line(c)} params: {c.params}",
    "metrics": _metric_line,  # described by its MetricSpec
    "presets": lambda f: getattr(f, "description", ""),
    "monitor_rules": lambda r: getattr(r, "description", None) or first_line(r),
    "models": lambda f: f if isinstance(f, str) and not isinstance(f, Lazy) else first_line(f),
    "tracks": lambda t: f"{t.description}; human-data budget {t.human_budget:.0%}",
    "trackers": lambda c: first_line(c) + (f" (needs {c.requires}: {c.install})" if getattr(c, "requires", None) else ""),
}


def rows(kind: str) -> list:
    """(name, origin, description) of every entry of ``kind``, by name; lazy entries stay unimported."""
    module, attr = SECTIONS[kind]
    registry = getattr(importlib.import_module(module), attr)
    describe = DESCRIBE.get(kind, first_line)
    if kind == "metrics":
        return [(s.name, registry.origin(s.name), describe(s)) for s in registry.specs()]
    return [(name, registry.origin(name), describe(obj)) for name, obj in registry.entries()]


def main(args) -> int:
    for kind in SECTIONS:
        if args.what and args.what != kind:
            continue
        found = rows(kind)
        print(f"{kind}:")
        width = max((len(n) for n, _, _ in found), default=0)
        owidth = max((len(o) for _, o, _ in found), default=0)
        for name, origin, text in found:
            print(f"  {name.ljust(width)}  {origin.ljust(owidth)}  {text}")
    return 0
