"""``madbench audit CORPUS``: estimated machine-written share, duplicates, and the share's place on the threshold curve.

    madbench audit my_corpus/                                   # .txt (blank-line separated) / .jsonl ('text') files
    madbench audit my_corpus/ --human known_human/ --output-dir runs/audit      # calibrate on your own human text
    madbench audit my_corpus/ --score-mixtures --reps 20        # error and coverage at known shares 0..100%
    madbench audit my_corpus/ --set sampling.temperature=1.0 --set sampling.top_p=1.0     # another sampler's text

How the share is estimated and what it cannot see: madbench/monitoring/audit.py and docs/monitoring.md.
An empty, binary or too-small corpus gets one line and nothing is written.
"""

from __future__ import annotations

import random
from pathlib import Path

from madbench.errors import MadbenchError
from madbench.monitoring.audit import (THRESHOLD_CURVE, Detector, corpus_passages, duplicate_rates, estimate_share,
                                       mixture_table, pool_auroc, threshold_position)


def add_arguments(p) -> None:
    p.add_argument("corpus", help="a .txt/.jsonl file or a folder of them (the text to audit)")
    p.add_argument("--preset", default="tiny", help="the detector model's preset (default: tiny)")
    p.add_argument("--human", default=None, metavar="CORPUS", help="known human text to calibrate on (default: the preset corpus's held-out passages)")
    p.add_argument("--calibration", type=int, default=100, help="passages of each kind (human, machine) to calibrate on (default 100)")
    p.add_argument("--doc-words", type=int, default=32, help="words per passage (default 32, the tiny preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override of the detector's preset, e.g. the sampling of its machine text (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the machine samples and the calibration draw")
    p.add_argument("--score-mixtures", action="store_true",
                   help="treat CORPUS as human and score the estimate on mixtures with the model's samples at 0, 10, ..., 100%%")
    p.add_argument("--reps", type=int, default=10, help="with --score-mixtures: mixtures per share (default 10)")
    p.add_argument("--mixture-docs", type=int, default=60, help="with --score-mixtures: passages per mixture (default 60)")
    p.add_argument("--output-dir", default=None, help="write audit.json (and mixtures.json) here")


def _check(args) -> list:
    if args.doc_words < 8:
        raise MadbenchError(f"--doc-words must be at least 8, got {args.doc_words}")
    if args.calibration < 20:
        raise MadbenchError(f"--calibration must be at least 20 passages of each kind, got {args.calibration}")
    if args.reps < 1 or args.mixture_docs < 10:
        raise MadbenchError("--reps must be >= 1 and --mixture-docs >= 10")
    for o in args.overrides:
        if "=" not in o:
            raise MadbenchError(f"--set takes KEY=VALUE (e.g. sampling.temperature=1.0), got {o!r}")
    passages = corpus_passages(args.corpus, args.doc_words)  # empty, binary, too small: one line, before any model
    if args.human:
        corpus_passages(args.human, args.doc_words)
    if args.score_mixtures and len(passages) < args.calibration + args.mixture_docs:
        raise MadbenchError(f"--score-mixtures needs {args.calibration + args.mixture_docs} passages of the corpus "
                            f"(--calibration + --mixture-docs), it has {len(passages)}")
    return passages


def main(args) -> int:
    passages = _check(args)
    det = Detector.from_preset(args.preset, args.doc_words, args.overrides)
    rng = random.Random(args.seed)
    if args.score_mixtures:
        return _mixtures(args, det, passages)
    human = corpus_passages(args.human, args.doc_words) if args.human else det.human()
    human = rng.sample(human, min(args.calibration, len(human)))
    machine = det.samples(args.calibration, args.seed)
    est = estimate_share(det.scores(passages), det.scores(human), det.scores(machine))
    dups = duplicate_rates(passages)
    lo, hi = est["interval"]
    print(f"madbench audit: {args.corpus}: {len(passages)} passages of about {args.doc_words} words")
    if est["tpr"] <= est["fpr"]:
        print(f"  machine-written share: no estimate: the detector does not tell its own samples from the human calibration "
              f"text (AUROC {est['auroc']:.3f}; TPR {est['tpr']:.2f} <= FPR {est['fpr']:.2f})")
    else:
        print(f"  machine-written share (text like the {args.preset} model's own): {est['share']:.2f} [95% {lo:.2f}, {hi:.2f}]")
    print(f"  detector: Binoculars (NLL / entropy) under the {args.preset} model; AUROC {est['auroc']:.3f} on "
          f"{len(human)} known human vs {len(machine)} of its own samples; at t={est['threshold']:.3f}: "
          f"TPR {est['tpr']:.2f}, FPR {est['fpr']:.2f}{'' if args.human else ' (human calibration: the preset corpus)'}")
    print(f"  duplicates: exact {dups['exact']:.1%}, near (Jaccard >= {dups['near_threshold']}) {dups['near']:.1%}")
    if est["tpr"] > est["fpr"]:
        print(f"  threshold curve: {threshold_position(est['share'])}")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "audit.json", {"corpus": str(args.corpus), "preset": args.preset, "doc_words": args.doc_words,
                                               "estimate": est, "duplicates": dups, "threshold_curve": THRESHOLD_CURVE,
                                               "threshold_position": threshold_position(est["share"]) if est["tpr"] > est["fpr"] else None})
        print(f"madbench audit: wrote {out / 'audit.json'}")
    return 0


def _mixtures(args, det, passages) -> int:
    need = args.calibration + args.mixture_docs
    pool = random.Random(args.seed).sample(passages, min(len(passages), 2 * need))  # a larger pool: reps differ more
    machine = det.samples(2 * need, args.seed)
    shares = [i / 10 for i in range(11)]
    rows = mixture_table(det, pool, machine, shares, args.mixture_docs, args.reps, args.calibration, seed=args.seed)
    score_auroc = pool_auroc(det, pool, machine)
    print(f"madbench audit: {len(pool)} corpus passages (taken as human) vs {len(machine)} samples of the {args.preset} model; "
          f"detector AUROC {score_auroc:.3f}; {args.calibration} of each kind calibrate, {args.mixture_docs} per mixture")
    print("| machine share | mean error | mean abs error | RMSE | 95% interval coverage | mixtures (no estimate) |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        cover = "-" if r["coverage"] is None else f"{r['coverage']:.2f}"
        print(f"| {r['share']:.0%} | {r['mean_error']:+.3f} | {r['mean_abs_error']:.3f} | {r['rmse']:.3f} | {cover} "
              f"| {r['reps']} ({r['no_estimate']}) |")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "mixtures.json", {"corpus": str(args.corpus), "preset": args.preset, "overrides": args.overrides,
                                                  "calibration": args.calibration, "mixture_docs": args.mixture_docs, "auroc": score_auroc,
                                                  "rows": rows})
    return 0
