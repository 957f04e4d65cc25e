"""``madbench monitor``: which alarm rules fire on each chain, and at which generation; or score the rules.

    madbench monitor runs/smoke                                         # every rule the run's panel allows
    madbench monitor leaderboard/submissions/track-tiny-fs-tiny-26ef58669eed.json --rule any_leading
    madbench monitor --score leaderboard/submissions/*.json runs/smoke --output-dir runs/monitor-score
    madbench monitor --score NEW.json --select-on OLD.json       # choose rule and alpha on OLD's chains, score on NEW's
    madbench monitor --score RUN.json --split seeds              # choose on the even seeds, score on the odd ones

A run folder's panel has 95% intervals (the rules' units); a submission has none, so its scale is the
spread of generation 0 over the seeds of the same model among the inputs (docs/monitoring.md).
``--score`` always scores the baselines ``always_g1`` and ``never`` beside the rules, and each rule against
its shuffled null (madbench/monitoring/score.py); its summary names a rule only when it was chosen on other
chains (``--select-on`` or ``--split seeds``) and is usable on the scored ones. It writes
``monitor_score.json``, ``monitor_score.md`` and ``lead_vs_false_alarms.png`` to ``--output-dir``
(printed only, without it).
"""

from __future__ import annotations

from pathlib import Path

from madbench.errors import MadbenchError
from madbench.monitoring import MONITOR_RULES, get_rule, missing_metrics
from madbench.monitoring.panel import LAGGING, LEADING, PANEL_KEY, attach_seed_noise, load_panels
from madbench.monitoring.rules import BASELINES
from madbench.monitoring.score import ONSET_RATIO, chain_key, choose, default_rules, figure, markdown, onset, score, usable


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_FILE", help="run folders (their results.json) or submission / results JSON files")
    p.add_argument("--rule", action="append", default=[], metavar="NAME",
                   help="a monitor rule (repeatable; default: every rule the panel allows; madbench list monitor_rules)")
    p.add_argument("--alpha", type=float, default=0.05, help="per-chain false-alarm rate each rule is set to (default 0.05)")
    p.add_argument("--score", action="store_true", help="score the rules: lead time on degrading chains vs false alarms on holding ones")
    p.add_argument("--select-on", nargs="+", default=None, metavar="RUN_OR_FILE",
                   help="with --score: choose the rule and its alpha on these chains, score it on the inputs (disjoint chains)")
    p.add_argument("--split", choices=["seeds"], default=None,
                   help="with --score: choose on the inputs' even seeds and score on their odd ones")
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
    if (args.select_on or args.split) and not args.score:
        raise MadbenchError("--select-on and --split choose a rule for --score; add --score")
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


def _sets(args, panels):
    """(the chains a rule is chosen on or None, the chains it is scored on, how they were split)."""
    if args.select_on and args.split:
        raise MadbenchError("give --select-on or --split, not both")
    if args.select_on:
        select = load_panels(args.select_on)
        attach_seed_noise(select)
        seen = {chain_key(p) for p in select}
        scored = [p for p in panels if chain_key(p) not in seen]  # a chain in both is chosen on, never scored
        if not scored:
            raise MadbenchError(f"every chain of {', '.join(args.inputs)} is also in --select-on: nothing is left to score on")
        shared = f" ({len(panels) - len(scored)} chain(s) in both left out of scoring)" if len(scored) < len(panels) else ""
        return select, scored, f"chosen on {', '.join(args.select_on)}; scored on {', '.join(args.inputs)}{shared}"
    if args.split == "seeds":
        halves = [load_panels(args.inputs), load_panels(args.inputs)]  # apart: each half's scale from its own seeds
        select, scored = ([p for p in h if isinstance(p.info.get("seed"), int) and p.info["seed"] % 2 == odd]
                          for h, odd in zip(halves, (0, 1)))
        if not select or not scored:
            raise MadbenchError(f"--split seeds needs even and odd seeds among {', '.join(args.inputs)}")
        attach_seed_noise(select)
        attach_seed_noise(scored)
        return select, scored, "chosen on the even seeds, scored on the odd seeds"
    return None, panels, "in sample: no rule is chosen (give --select-on or --split seeds to choose one on other chains)"


def _score(args, panels, names) -> int:
    names = list(dict.fromkeys([*names, *BASELINES]))
    select, scored, how = _sets(args, panels)
    chosen = choose(select, names) if select is not None else {}
    rows, counts = score(scored, names, args.alpha)
    oos = []
    for model, pick in chosen.items():  # the chosen rule at its chosen alpha, on the scored chains
        row = next((r for r in score(scored, [pick["rule"]], pick["alpha"])[0] if r["model"] == model), None)
        if row:
            oos.append(dict(row, alpha=pick["alpha"], selected={k: pick[k] for k in ("j", "p", "median_lead", "false_alarm_rate")}))
    table = markdown(rows)
    print(table)
    print(f"madbench monitor: {how}; alpha {args.alpha:g} in the table")
    for model, c in counts.items():
        print(f"{model}: {c['degrading']} degrading, {c['holding']} holding, {c['mixed']} left out (seed and group disagree)")
        if select is None:
            continue
        if model not in chosen:
            print("  no rule chosen: on the chains it was chosen on, none beats always_g1, never and its shuffled null "
                  "on every degrading chain")
            continue
        pick, r = chosen[model], next((o for o in oos if o["model"] == model), None)
        lead = "-" if r is None or r["median_lead"] is None else f"{r['median_lead']:g} (always_g1: {r['trivial_lead']:g})"
        if r and r["useful"] and r["covers_all"]:
            print(f"  usable out of sample: {pick['rule']} at alpha {pick['alpha']:g}: warned by the onset on {r['warned_in_time']}/"
                  f"{r['degrading']} degrading chains, median lead {lead}, false alarms {r['false_alarms']}/{r['holding']}; "
                  f"J {r['j']:.2f} vs shuffled {r['shuffled_j']:.2f} (p {r['p']:.3f})")
        else:
            why = ("it cannot read every degrading chain's panel" if r and not r["covers_all"] else
                   f"J {r['j'] if r['j'] is not None else '-'} (p {r['p'] if r['p'] is not None else '-'}) does not beat "
                   "always_g1, never and the shuffled null" if r else "it reads none of these chains")
            print(f"  no rule usable out of sample: {pick['rule']} at alpha {pick['alpha']:g}, chosen, fails here: {why}")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "monitor_score.json", {"alpha": args.alpha, "onset_ratio": ONSET_RATIO, "inputs": list(args.inputs),
                                                       "select_on": list(args.select_on or []), "split": args.split, "how": how,
                                                       "counts": counts, "rows": rows, "chosen": oos})
        fileio.atomic_write_text(out / "monitor_score.md", table + "\n")
        figure(rows, out / "lead_vs_false_alarms.png")
        print(f"madbench monitor: wrote {out}/monitor_score.json, monitor_score.md, lead_vs_false_alarms.png")
    return 0
