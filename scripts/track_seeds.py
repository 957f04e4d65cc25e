"""How many seeds a track needs: each mitigation's measured effect and seed spread, and the seeds for 80% power.

    .venv/bin/python scripts/track_seeds.py leaderboard/submissions/track-tiny-fs-*.json
    .venv/bin/python scripts/track_seeds.py leaderboard/submissions/track-smollm2-fs-*.json --power 0.9

For every mitigation set of the given track submissions and every metric of the track's panel plus the
mitigation's own target: the paired effect at the last generation against the same run's baseline (as the
site's track table computes it), its 95% seed interval, whether it separates at the track's seed count, and
``seeds_for_power``: the seeds at which the interval would exclude 0 with the given power if the effect and
spread are as measured (optimistic: the same seeds estimate the effect), and the same count for the effect at
the interval's end nearer 0 (``conservative_seeds_for_power``; "—" when the interval holds 0). A track's seed count is chosen so that the effects the regression check separates
(docs/leaderboard.md, "Seed counts") separate on the track too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from madbench.leaderboard import tiers, tracks_view  # noqa: E402

MOST = 1000  # seeds_for_power searches up to this many seeds


def rows(data: dict, power: float):
    name = data["track"]
    metrics = tracks_view.panel([data], name)
    for r in tracks_view.submission_rows(data, name, metrics):
        cells = list(r["panel"].values()) + [t for t in r["targets"] if t["metric"] not in r["panel"]]
        for cell in cells:
            if cell["effect_pct"] is None:
                continue
            own = any(t["metric"] == cell["metric"] for t in r["targets"])
            yield {"track": name, "mitigation": r["mitigation"], "metric": cell["metric"] + (" (target)" if own else ""),
                   "effect_pct": cell["effect_pct"], "ci95_pct": cell["ci95_pct"], "seeds": cell["n"],
                   "separated": cell["separated"], "seeds_for_power": tiers.seeds_for_power(cell["per_seed"], power, most=MOST),
                   "seeds_for_power_conservative": tiers.conservative_seeds_for_power(cell["per_seed"], power, most=MOST)}


def _count(need) -> str:
    return "—" if need is None else (f">{MOST}" if need > MOST else str(need))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="track submissions (leaderboard/submissions/track-*.json)")
    ap.add_argument("--power", type=float, default=0.8)
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = ap.parse_args(argv)
    if not args.json:
        print(f"| track | mitigation | metric | effect | 95% interval | seeds | separated | seeds for {args.power:.0%} power "
              f"| at the interval's near end |\n|---|---|---|---|---|---|---|---|---|")
    for f in args.files:
        data = json.loads(f.read_text())
        if not data.get("track"):
            print(f"{f}: not a track submission", file=sys.stderr)
            return 2
        for row in rows(data, args.power):
            if args.json:
                print(json.dumps(row))
                continue
            lo, hi = row["ci95_pct"]
            need, safe = (_count(row[k]) for k in ("seeds_for_power", "seeds_for_power_conservative"))
            print(f"| {row['track']} | {row['mitigation']} | {row['metric']} | {row['effect_pct']:+.1f}% | "
                  f"[{lo:+.1f}, {hi:+.1f}] | {row['seeds']} | {'yes' if row['separated'] else 'no'} | {need} | {safe} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
