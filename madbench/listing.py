"""List what is registered: regimes, mitigations, metrics, presets, corpora, models.

    madbench list
    madbench list metrics
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", choices=["regimes", "mitigations", "metrics", "presets", "corpora", "models"],
                   help="show only this kind")


def main(args) -> int:
    from .corpus import CORPORA
    from .metrics import METRICS
    from .mitigations import MITIGATIONS
    from .models import EMBEDDED
    from .presets import PRESETS
    from .regimes import REGIMES

    def first_line(obj) -> str:
        return ((getattr(obj, "card", "") or obj.__doc__ or "").strip().splitlines() or [""])[0]

    sections = {
        "regimes": [(n, first_line(f) + " (modes: /replace, /accumulate)") for n, f in REGIMES.items()],
        "mitigations": [(n, f"{first_line(c)} params: {c.params}") for n, c in MITIGATIONS.items()],
        "metrics": [(n, f"[{ {True: 'higher is better', False: 'lower is better'}.get(getattr(f, 'higher_is_better', None), 'no direction')}] {first_line(f)}") for n, f in METRICS.items()],
        "presets": [(n, getattr(f, "description", "")) for n, f in PRESETS.items()],
        "corpora": [(n, first_line(f)) for n, f in CORPORA.items()],
        "models": list(EMBEDDED.items()),
    }
    for title, rows in sections.items():
        if args.what and args.what != title:
            continue
        print(f"{title}:")
        width = max((len(n) for n, _ in rows), default=0)
        for name, text in rows:
            print(f"  {name.ljust(width)}  {text}")
    return 0
