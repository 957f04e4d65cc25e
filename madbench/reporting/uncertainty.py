"""Estimator intervals in the report layer: per-group bands and the "not resolved" verdict.

Each generation of results.json may carry ``intervals[metric] = [low, high]`` (95%, from
the data the metric was scored on; see ``madbench.metrics.intervals``). Old results files
have none, and everything here then answers None. Used by ``madbench report``::

    madbench report runs/smoke     # bands in the plots, "not resolved" in report.md
"""

from __future__ import annotations

from typing import Optional


def interval(gen: dict, metric: str) -> Optional[list]:
    iv = (gen.get("intervals") or {}).get(metric)
    return list(iv) if iv and len(iv) == 2 and None not in iv else None


def overlaps(a, b) -> Optional[bool]:
    if not a or not b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def resolved(chain: dict, metric: str) -> Optional[bool]:
    """False when the metric's interval at the chain's last generation overlaps generation 0's
    (the change could be estimator noise); True when they are apart; None without intervals."""
    gens = chain.get("generations") or []
    if len(gens) < 2:
        return None
    first, last = interval(gens[0], metric), interval(gens[-1], metric)
    verdict = overlaps(first, last)
    return None if verdict is None else not verdict


def group_bands(chains: list[dict], groups: list[dict]) -> None:
    """Add ``group['intervals'][metric] = [{generation, low, high}]`` to groups of ``stats.aggregate_chains``:
    the mean over the group's chains (seeds) of their estimator interval bounds."""
    by_id = {c.get("id"): c for c in chains}
    for group in groups:
        rows: dict[str, dict[int, list]] = {}
        for cid in group.get("chains") or []:
            for gen in (by_id.get(cid) or {}).get("generations") or []:
                for metric, iv in (gen.get("intervals") or {}).items():
                    if iv and len(iv) == 2 and None not in iv:
                        rows.setdefault(metric, {}).setdefault(int(gen["generation"]), []).append(iv)
        group["intervals"] = {
            metric: [{"generation": g, "low": sum(i[0] for i in ivs) / len(ivs), "high": sum(i[1] for i in ivs) / len(ivs)}
                     for g, ivs in sorted(per_gen.items())]
            for metric, per_gen in rows.items()
        }
