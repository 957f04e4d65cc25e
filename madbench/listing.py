"""List what is registered: regimes, mitigations, metrics, presets, corpora, models, and where each came from.

    madbench list
    madbench list metrics
    madbench --plugin my_filter.py list mitigations   # the origin column says 'file .../my_filter.py'

Origins: ``builtin``, ``entry point DIST VERSION`` (an installed plug-in package),
``file PATH`` or ``module NAME`` (``--plugin`` / ``plugins:``).
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", choices=["regimes", "mitigations", "metrics", "presets", "corpora", "models", "tracks"],
                   help="show only this kind")


def main(args) -> int:
    from madbench.data.corpus import CORPORA
    from madbench.metrics import METRICS
    from madbench.mitigations import MITIGATIONS
    from madbench.models.base_model import MODELS
    from madbench.config.presets import PRESETS
    from madbench.loop.regimes import REGIMES
    from madbench.config.tracks import TRACKS

    def first_line(obj) -> str:
        return ((getattr(obj, "card", "") or obj.__doc__ or "").strip().splitlines() or [""])[0]

    sections = {
        "regimes": (REGIMES, lambda f: first_line(f) + " (modes: /replace, /accumulate)"),
        "mitigations": (MITIGATIONS, lambda c: f"{first_line(c)} params: {c.params}"),
        "metrics": (METRICS, _metric_line),  # described by its MetricSpec
        "presets": (PRESETS, lambda f: getattr(f, "description", "")),
        "corpora": (CORPORA, first_line),
        "models": (MODELS, lambda f: f if isinstance(f, str) else first_line(f)),
        "tracks": (TRACKS, lambda t: f"{t.description}; human-data budget {t.human_budget:.0%}"),
    }
    for title, (registry, describe) in sections.items():
        if args.what and args.what != title:
            continue
        entries = [(s.name, s) for s in METRICS.specs()] if registry is METRICS else registry.items()
        rows = [(name, registry.origin(name), describe(obj)) for name, obj in entries]
        print(f"{title}:")
        width = max((len(n) for n, _, _ in rows), default=0)
        owidth = max((len(o) for _, o, _ in rows), default=0)
        for name, origin, text in rows:
            print(f"  {name.ljust(width)}  {origin.ljust(owidth)}  {text}")
    return 0


def _metric_line(spec) -> str:
    direction = {True: "higher is better", False: "lower is better"}.get(spec.higher_is_better, "no direction")
    return f"[{direction}] {spec.description}"
