"""``madbench audit CORPUS``: estimated machine-written share, duplicates, and the share's place on the threshold curve.

    madbench audit my_corpus/                                   # .txt (blank-line separated) / .jsonl ('text') files
    madbench audit my_corpus/ --human known_human/ --output-dir runs/audit      # calibrate on your own human text
    madbench audit my_corpus/ --score-mixtures --reps 20        # error and coverage at known shares 0..100%
    madbench audit my_corpus/ --sampler 0.8,0.9                # calibrate on one sampler only (default: preset's + 1.0,1.0)
    madbench audit my_corpus/ --machine known_machine/          # known machine text as a calibration source too
    madbench audit kjv --score-mixtures --mix-sampler 1.0,1.0   # mixtures with text of a sampler (calibrated or not)

How the share is estimated and what it cannot see: madbench/monitoring/audit.py and docs/monitoring.md.
An empty, binary or too-small corpus gets one line and nothing is written. When the corpus is not a mix of the
calibration sets, or the detector does not see one of the machine sources it was calibrated on, the answer is
"cannot tell" (no share, no interval, no place on the threshold curve).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from madbench.errors import MadbenchError
from madbench.monitoring.audit import (THRESHOLD_CURVE, Detector, corpus_passages, duplicate_rates, estimate_share, fit_check,
                                       mixture_table, pool_auroc, source_sight, threshold_position, verdict)


def add_arguments(p) -> None:
    p.add_argument("corpus", help="a .txt/.jsonl file or a folder of them (the text to audit)")
    p.add_argument("--preset", default="tiny", help="the detector model's preset (default: tiny)")
    p.add_argument("--human", default=None, metavar="CORPUS", help="known human text to calibrate on (default: the preset corpus's "
                   "held-out passages; with --score-mixtures: the corpus's own, apart from each mixture)")
    p.add_argument("--calibration", type=int, default=100, help="passages of each kind (human, machine) to calibrate on (default 100)")
    p.add_argument("--doc-words", type=int, default=32, help="words per passage (default 32, the tiny preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override of the detector's preset, e.g. the sampling of its machine text (repeatable)")
    p.add_argument("--sampler", action="append", default=[], metavar="T,P",
                   help="a sampler (temperature,top-p) of the model's own machine text to calibrate on (repeatable; "
                        "default: the preset's and pure sampling 1.0,1.0)")
    p.add_argument("--machine", action="append", default=[], metavar="CORPUS",
                   help="known machine text to calibrate on as one more source (repeatable)")
    p.add_argument("--mix-sampler", default=None, metavar="T,P",
                   help="with --score-mixtures: the sampler of the mixtures' machine text (default: the first calibrated one)")
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
    for spec in args.sampler + ([args.mix_sampler] if args.mix_sampler else []):
        _sampler(spec)
    for o in args.overrides:
        if "=" not in o:
            raise MadbenchError(f"--set takes KEY=VALUE (e.g. sampling.temperature=1.0), got {o!r}")
    passages = corpus_passages(args.corpus, args.doc_words)  # empty, binary, too small: one line, before any model
    for extra in ([args.human] if args.human else []) + list(args.machine):
        corpus_passages(extra, args.doc_words)
    if args.score_mixtures and len(passages) < args.calibration + args.mixture_docs:
        raise MadbenchError(f"--score-mixtures needs {args.calibration + args.mixture_docs} passages of the corpus "
                            f"(--calibration + --mixture-docs), it has {len(passages)}")
    return passages


def _sampler(spec: str) -> tuple:
    try:
        t, p = (float(x) for x in spec.split(","))
    except ValueError:
        raise MadbenchError(f"--sampler / --mix-sampler take TEMPERATURE,TOP_P (e.g. 1.0,1.0), got {spec!r}") from None
    if not (t > 0 and 0 < p <= 1):
        raise MadbenchError(f"--sampler {spec}: temperature must be > 0 and top-p in (0, 1]")
    return t, p


def _sources(args, det, total: int, seed: int) -> dict:
    """name -> machine passages, one per calibration source (each sampler's own samples, each --machine corpus),
    ``total`` in equal parts (at least 20 each)."""
    specs = list(dict.fromkeys([_sampler(x) for x in args.sampler]
                               or [(det.cfg.sampling.temperature, det.cfg.sampling.top_p), (1.0, 1.0)]))
    n = max(20, total // (len(specs) + len(args.machine)))
    out = {}
    for i, (t, p) in enumerate(specs):
        d = det.with_sampler(t, p)
        out[f"{args.preset} model at {d.sampler()}"] = d.samples(n, seed + 7919 * i)
    for path in args.machine:
        texts = corpus_passages(path, args.doc_words)
        out[f"--machine {path}"] = random.Random(args.seed).sample(texts, min(n, len(texts)))
    return out


def main(args) -> int:
    passages = _check(args)
    det = Detector.from_preset(args.preset, args.doc_words, args.overrides)
    rng = random.Random(args.seed)
    if args.score_mixtures:
        return _mixtures(args, det, passages)
    human = corpus_passages(args.human, args.doc_words) if args.human else det.human()
    human = rng.sample(human, min(args.calibration, len(human)))
    sources = _sources(args, det, args.calibration, args.seed)
    feats = {name: det.features(texts) for name, texts in sources.items()}
    machine = np.concatenate(list(feats.values()))
    c, h = det.features(passages), det.features(human)
    est = estimate_share(c[:, 0], h[:, 0], machine[:, 0])
    fit = fit_check(c, h, machine, est["share"])
    sight = source_sight(h[:, 0], {k: f[:, 0] for k, f in feats.items()})
    why = verdict(est, fit, sight)
    dups = duplicate_rates(passages)
    lo, hi = est["interval"]
    print(f"madbench audit: {args.corpus}: {len(passages)} passages of about {args.doc_words} words")
    if why:
        print(f"  machine-written share: cannot tell: {why}")
    else:
        print(f"  machine-written share (text like the calibration sources'): {est['share']:.2f} [95% {lo:.2f}, {hi:.2f}]")
    print(f"  detector: Binoculars (NLL / entropy) under the {args.preset} model; calibrated on {len(human)} human passages "
          f"({args.human or 'the preset corpus'}) and " + "; ".join(f"{len(feats[k])} of {k} (AUROC {v:.3f})" for k, v in sight.items())
          + f"; fit to a mix of them: p = {fit['p']:.3f} (worst: {fit['feature']}, KS {fit['ks']:.2f})")
    print(f"  duplicates: exact {dups['exact']:.1%}, near (Jaccard >= {dups['near_threshold']}) {dups['near']:.1%}")
    if not why:
        print(f"  threshold curve: {threshold_position(est['share'])}")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "audit.json", {"corpus": str(args.corpus), "preset": args.preset, "doc_words": args.doc_words,
                                               "estimate": None if why else est, "cannot_tell": why, "fit": fit,
                                               "calibration": {"human": args.human or "preset corpus", "sources": sight},
                                               "duplicates": dups, "threshold_curve": THRESHOLD_CURVE,
                                               "threshold_position": None if why else threshold_position(est["share"])})
        print(f"madbench audit: wrote {out / 'audit.json'}")
    return 0


def _mixtures(args, det, passages) -> int:
    need = args.calibration + args.mixture_docs
    pool = random.Random(args.seed).sample(passages, min(len(passages), 2 * need))  # a larger pool: reps differ more
    sources = _sources(args, det, need, args.seed)
    t, p = _sampler(args.mix_sampler) if args.mix_sampler else (None, None)
    gen = det.with_sampler(t, p) if t is not None else det.with_sampler(*_first(args, det))
    machine = gen.samples(2 * need, args.seed + 104729)  # apart from every calibration draw
    shares = [i / 10 for i in range(11)]
    cal_human = corpus_passages(args.human, args.doc_words) if args.human else None
    rows = mixture_table(det, pool, sources, machine, shares, args.mixture_docs, args.reps, args.calibration, seed=args.seed,
                         cal_human=random.Random(args.seed).sample(cal_human, min(len(cal_human), 2 * args.calibration))
                         if cal_human else None)
    score_auroc = pool_auroc(det, pool, machine)
    print(f"madbench audit: {len(pool)} corpus passages (taken as human) vs {len(machine)} samples of the {args.preset} model at "
          f"{gen.sampler()} (detector AUROC {score_auroc:.3f}); calibrated on {args.calibration} human passages "
          f"({args.human or 'of the corpus, apart from each mixture'}) and "
          f"{', '.join(sources)}; {args.mixture_docs} passages per mixture")
    print("| machine share | mean error | mean abs error | RMSE | 95% interval coverage | mixtures (cannot tell; blind) |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        cover = "-" if r["coverage"] is None else f"{r['coverage']:.2f}"
        err = "-" if r["coverage"] is None else f"{r['mean_error']:+.3f} | {r['mean_abs_error']:.3f} | {r['rmse']:.3f}"
        print(f"| {r['share']:.0%} | {err if r['coverage'] is not None else '- | - | -'} | {cover} "
              f"| {r['reps']} ({r['no_estimate']}; {r['blind']}) |")
    if args.output_dir:
        from madbench.results import fileio

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fileio.write_json(out / "mixtures.json", {"corpus": str(args.corpus), "preset": args.preset, "overrides": args.overrides,
                                                  "calibration": args.calibration, "sources": list(sources),
                                                  "mixture_sampler": gen.sampler(), "mixture_docs": args.mixture_docs,
                                                  "auroc": score_auroc, "rows": rows})
    return 0


def _first(args, det) -> tuple:
    return _sampler(args.sampler[0]) if args.sampler else (det.cfg.sampling.temperature, det.cfg.sampling.top_p)
