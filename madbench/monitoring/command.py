"""``madbench monitor``: which alarm rules fire on each chain, and at which generation; or score the rules.

    madbench monitor runs/smoke                                         # every rule the run's panel allows
    madbench monitor leaderboard/submissions/track-tiny-fs-tiny-26ef58669eed.json --rule any_leading
    madbench monitor --score leaderboard/submissions/*.json runs/smoke --output-dir runs/monitor-score

A run folder's panel has 95% intervals (the rules' units); a submission has none, so its scale is the
spread of generation 0 over the seeds of the same model among the inputs (docs/monitoring.md).
``--score`` writes ``monitor_score.json``, ``monitor_score.md`` and ``lead_vs_false_alarms.png`` to
``--output-dir`` (printed only, without it).
"""

from __future__ import annotations

from pathlib import Path

from madbench.errors import MadbenchError
from madbench.monitoring import MONITOR_RULES, get_rule, missing_metrics
from madbench.monitoring.panel import LAGGING, LEADING, PANEL_KEY, attach_seed_noise, load_panels
from madbench.monitoring.score import ONSET_RATIO, default_rules, figure, markdown, onset, score, usable


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_FILE", help="run folders (their results.json) or submission / results JSON files")
    p.add_argument("--rule", action="append", default=[], metavar="NAME",
                   help="a monitor rule (repeatable; default: every rule the panel allows; madbench list monitor_rules)")
    p.add_argument("--alpha", type=float, default=0.05, help="per-chain false-alarm rate each rule is set to (default 0.05)")
    p.add_argument("--score", action="store_true", help="score the rules: lead time on degrading chains vs false alarms on holding ones")
    p.add_argument("--output-dir", default=None, help="with --score: write the table, its JSON and the figure here")


def _check(args, panels) -> list:
    if not 0 < args.alpha < 1:
        raise MadbenchError(f"--alpha must be a false-alarm rate between 0 and 1 (e.g. 0.05), got {args.alpha}")
    if not panels:
        raise MadbenchError(f"{', '.join(args.inputs)} hold no chains")
    names = args.rule or default_rules()
    for name in args.rule:
        rule = get_rule(name)
        lacking = sorted({m for p in panels for m in missing_metrics(rule, p)})
        if lacking and all(missing_metrics(rule, p) for p in panels):  # some chains have it: the others are skipped
            raise MadbenchError(f"rule {name} reads {', '.join(lacking)}, which the panel of {', '.join(args.inputs)} lacks; "
                                f"turn them on with {PANEL_KEY} (e.g. madbench run ... '{PANEL_KEY}=[perplexity,{','.join(lacking)}]')")
    have = {m for p in panels for m in p.values[0]} if panels[0].values else set()
    if not args.rule and not have & set(LEADING):
        raise MadbenchError(f"{', '.join(args.inputs)} has none of the leading indicators the rules read "
                            f"({', '.join(sorted(LEADING)[:6])}, ...); turn them on with {PANEL_KEY}")
    unscaled = [p.chain_id for p in panels if p.noise == "none"]
    if unscaled and len(unscaled) == len(panels):
        raise MadbenchError(f"{', '.join(args.inputs)} has no 95% intervals and one seed per model: the rules have no scale; "
                            f"give the run folder (results.json has intervals) or inputs with two or more seeds")
    return names


def main(args) -> int:
    panels = load_panels(args.inputs)
    attach_seed_noise(panels)
    names = _check(args, panels)
    if args.score:
        return _score(args, panels, names)
    for p in panels:
        lag = onset(p)
        print(f"{p.chain_id} ({p.info.get('source')}; scale: {p.noise}; perplexity +{ONSET_RATIO - 1:.0%}: "
              f"{'generation ' + str(lag) if lag is not None else 'not reached' if LAGGING in p.values[0] else 'not measured'})")
        fired = []
        for name in names:
            rule = get_rule(name)
            if not usable(rule, p):
                continue
            alarm = rule.first_alarm(p, args.alpha)
            fired.append(f"  {name:34s} " + (f"fires at generation {alarm.generation} ({alarm.indicator}: "
                                             f"{alarm.statistic:.2f} > {alarm.threshold:.2f})" if alarm else "no alarm"))
        print("\n".join(fired) if fired else "  no rule applies to this chain's panel")
    print(f"madbench monitor: {len(panels)} chain(s), false-alarm rate {args.alpha:g} per chain and rule "
          f"({len(MONITOR_RULES.registered())} rules registered)")
    return 0


def _score(args, panels, names) -> int:
    rows, counts = score(panels, names, args.alpha)
    table = markdown(rows)
    print(table)
    for model, c in counts.items():
        print(f"{model}: {c['degrading']} degrading, {c['holding']} holding, {c['mixed']} left out (seed and group disagree)")
        timely = [r for r in rows if r["model"] == model and r["degrading"] and r["warned_in_time"] == r["degrading"]]
        if timely:
            best = max(timely, key=lambda r: (r["median_lead"], -(r["false_alarm_rate"] or 0)))
            fa = "-" if best["false_alarm_rate"] is None else f"{best['false_alarms']}/{best['holding']}"
            print(f"  warns first on every degrading chain: {best['rule']}, a median {best['median_lead']:g} generation(s) "
                  f"before perplexity +{ONSET_RATIO - 1:.0%}; false alarms on holding chains {fa}")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "monitor_score.json", {"alpha": args.alpha, "onset_ratio": ONSET_RATIO,
                                                       "inputs": list(args.inputs), "counts": counts, "rows": rows})
        fileio.atomic_write_text(out / "monitor_score.md", table + "\n")
        figure(rows, out / "lead_vs_false_alarms.png")
        print(f"madbench monitor: wrote {out}/monitor_score.json, monitor_score.md, lead_vs_false_alarms.png")
    return 0
