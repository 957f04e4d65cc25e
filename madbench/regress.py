"""Regression benchmark: every mitigation must beat the unmitigated baseline, and nothing may drift.

    madbench regress                                  # the fixed benchmark (tiny model, 8 seeds, 6 generations), checks, table
    madbench regress --update                         # rewrite madbench/regress_reference.json, deliberately
    madbench regress --seeds 0 --generations 2 --mitigations mix_real mitigation_params.mix_real.fraction=0

One run config (the ``tiny`` preset, fully_synthetic, ``loop.mitigations`` = the
baseline plus each mitigation, several seeds) goes through the normal loop into
``--output-dir`` (default runs/regress): resumable, generation 0 shared by every
chain of a seed. Then, at the last generation:

1. each mitigation must beat the baseline on its ``target_metric`` (declared by
   its class) with the 95% seed intervals of the two groups not overlapping
   (``madbench.stats.compare(...)["separated"]``), when several seeds are run;
2. every checked metric of every group must stay within a relative tolerance of
   the reference values stored in the repository (only when the run's config is
   the reference's config; a reduced benchmark skips this check).

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import io
from .errors import MadbenchError

REFERENCE = Path(__file__).with_name("regress_reference.json")
DEFAULT_SEEDS = (0, 1, 2, 3, 4, 5, 6, 7)  # 8 seeds: 95% intervals narrow enough to separate a ~8% effect
DEFAULT_GENERATIONS = 6
# mitigations that clear the baseline's seed spread on the tiny model; verifier_filter and dedup do not at
# this scale (see README), so they are checked only on request (--mitigations)
DEFAULT_MITIGATIONS = ("mix_real", "accumulate", "surprise_filter", "watermark_filter")
CHECKED = ("perplexity", "distinct_2", "type_token_ratio")  # metrics checked for drift
TOLERANCE = {"perplexity": 0.10, "distinct_2": 0.08, "type_token_ratio": 0.08}  # relative, per metric
REGIME = "fully_synthetic"


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="extra config overrides (e.g. a sabotaged mitigation_params.mix_real.fraction=0)")
    p.add_argument("--output-dir", default="runs/regress", help="run folder, resumed when it exists (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="seeds (default: %(default)s)")
    p.add_argument("--generations", type=int, default=DEFAULT_GENERATIONS, help="generations after generation 0 (default: %(default)s)")
    p.add_argument("--mitigations", nargs="+", default=list(DEFAULT_MITIGATIONS), metavar="NAME",
                   help="mitigations to check, each beside the baseline (default: all: %(default)s)")
    p.add_argument("--reference", default=str(REFERENCE), help="reference values file (default: the one in the package)")
    p.add_argument("--fresh", action="store_true", help="delete --output-dir first instead of resuming it")
    p.add_argument("--update", action="store_true", help="rewrite the reference file from this run (full benchmark only)")


def build(args):
    from .config import build_config
    from .presets import PRESETS

    sets = ",".join(["none", *args.mitigations])
    overrides = [f"name=regress", f"loop.regimes=[{REGIME}]", f"loop.mitigations=[{sets}]",
                 f"loop.seeds=[{','.join(map(str, args.seeds))}]", f"loop.generations={args.generations}", *args.overrides]
    return build_config(PRESETS.get("tiny")(), None, overrides)


def _last(chain: dict, metric: str):
    gens = chain.get("generations") or []
    return gens[-1]["metrics"].get(metric) if gens else None


def evaluate(results: dict, mitigations, reference: dict | None) -> list[dict]:
    """Rows of the verdict table: target checks first, then drift checks."""
    from .metrics import metric_info
    from .mitigations import MITIGATIONS
    from .stats import compare, seed_summary

    chains = results["chains"]
    by_set = {}
    for c in chains:
        by_set.setdefault("+".join(c["mitigations"]) or "baseline", []).append(c)
    rows = []
    base = by_set.get("baseline", [])
    n_seeds = len(base)
    # sanity: the unmitigated chain must collapse, or no mitigation has anything to fix
    first = [c["generations"][0]["metrics"].get("perplexity") for c in base if c.get("generations")]
    last = [_last(c, "perplexity") for c in base]
    g0, gl = seed_summary(first)["mean"], seed_summary(last)["mean"]
    rows.append({"mitigation": "baseline", "metric": "perplexity gen0->last", "baseline": g0, "value": gl,
                 "reference": None, "ok": g0 is not None and gl is not None and gl > g0,
                 "verdict": "collapses" if g0 is not None and gl is not None and gl > g0 else "FAIL: no collapse"})
    for name in mitigations:
        cls = MITIGATIONS.get(name)
        metric = cls.target_metric
        hib = metric_info(metric)["higher_is_better"]
        a = [_last(c, metric) for c in base]
        b = [_last(c, metric) for c in by_set.get(name, [])]
        cmp = compare(a, b, hib)
        ok = bool(cmp["better"]) and (cmp["separated"] or n_seeds < 2 and cmp["diff"] != 0)
        if cmp["diff"] is None:
            verdict = "FAIL: no results"
        else:
            rel = cmp["diff"] / abs(cmp["a"]["mean"]) * 100 if cmp["a"]["mean"] else float("nan")
            word = "beats" if ok else ("FAIL: better but within seed spread" if cmp["better"] else "FAIL: not better")
            verdict = f"{word} ({cmp['diff']:+.4g}, {rel:+.1f}%" + (f", g={cmp['hedges_g']:+.2f}" if cmp["hedges_g"] is not None else "") + ")"
        rows.append({"mitigation": name, "metric": metric + (" (target)"), "baseline": cmp["a"]["mean"],
                     "baseline_sd": cmp["a"]["std"], "value": cmp["b"]["mean"], "value_sd": cmp["b"]["std"],
                     "reference": _ref(reference, name, metric), "ok": ok, "verdict": verdict})
    if reference is None:
        return rows
    tol = {**TOLERANCE, **reference.get("tolerance", {})}
    for label in ["baseline", *mitigations]:
        for metric in CHECKED:
            summary = seed_summary([_last(c, metric) for c in by_set.get(label, [])])
            value = summary["mean"]
            ref = _ref(reference, label, metric)
            if ref is None or value is None:
                ok, verdict = False, "FAIL: no reference value" if ref is None else "FAIL: no results"
            else:
                drift = (value - ref) / abs(ref) if ref else value - ref
                # the allowed drift is the relative tolerance, or 3 standard errors of the seed mean where the
                # seeds spread more than that (another CPU can round differently and send chains elsewhere)
                noise = 3 * summary["std"] / summary["n"] ** 0.5 / abs(ref) if ref and summary["std"] else 0.0
                allowed = max(tol.get(metric, 0.1), noise)
                ok = abs(drift) <= allowed
                verdict = f"{'ok' if ok else 'FAIL: drift'} ({drift * 100:+.1f}%, tol {allowed * 100:.0f}%)"
            rows.append({"mitigation": label, "metric": metric, "baseline": None, "value": value, "reference": ref,
                         "ok": ok, "verdict": verdict})
    return rows


def _flat(data, prefix=""):
    out = {}
    for key, value in (data or {}).items():
        if isinstance(value, dict) and key != "mitigation_params":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def config_changes(ref_config: dict, config: dict) -> list:
    """Dotted keys whose values differ between two configs; keys only one side has (a config field
    added later with its default) are ignored, so new features do not invalidate the reference."""
    a, b = _flat(ref_config), _flat(config)
    return sorted(k for k in set(a) & set(b) if a[k] != b[k])


def _ref(reference, label, metric):
    if not reference:
        return None
    return (reference.get("values", {}).get(label) or {}).get(metric)


def reference_values(results: dict, mitigations) -> dict:
    from .stats import seed_summary

    out = {}
    for label in ["baseline", *mitigations]:
        members = [c for c in results["chains"] if ("+".join(c["mitigations"]) or "baseline") == label]
        out[label] = {m: seed_summary([_last(c, m) for c in members])["mean"] for m in CHECKED}
    return out


def _fmt(v, sd=None) -> str:
    if v is None:
        return "-"
    text = f"{v:.4g}"
    return text + (f"±{sd:.2g}" if sd else "")


def print_table(rows) -> None:
    head = ("mitigation", "metric", "baseline", "value", "reference", "verdict")
    cells = [(r["mitigation"], r["metric"], _fmt(r["baseline"], r.get("baseline_sd")), _fmt(r["value"], r.get("value_sd")),
              _fmt(r["reference"]), r["verdict"]) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells)]
    for line in [head, tuple("-" * w for w in widths), *cells]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())


def main(args) -> int:
    from .mitigations import MITIGATIONS
    from .run import execute

    start = time.perf_counter()
    for name in args.mitigations:
        MITIGATIONS.get(name)
    cfg = build(args)
    run_dir = Path(args.output_dir)
    if args.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    saved = run_dir / "config.json"
    if saved.is_file() and io.read_json(saved).get("config_hash") != cfg.hash():
        raise MadbenchError(f"{run_dir} holds a different benchmark config; pass --fresh to replace it or choose another --output-dir")
    execute(cfg, run_dir, log=lambda msg: print(msg, flush=True))
    results = io.read_json(run_dir / "results.json")
    ref_path = Path(args.reference)
    reference = io.read_json(ref_path) if ref_path.is_file() else None
    full = (tuple(args.seeds), args.generations, tuple(args.mitigations), tuple(args.overrides)) == \
        (DEFAULT_SEEDS, DEFAULT_GENERATIONS, DEFAULT_MITIGATIONS, ())
    if args.update:
        if not full:
            raise MadbenchError("--update writes the reference of the full benchmark; drop --seeds/--generations/--mitigations and overrides")
        io.write_json(ref_path, {"config_hash": cfg.hash(), "config": cfg.to_dict(), "tolerance": dict(TOLERANCE),
                                 "values": reference_values(results, args.mitigations),
                                 "note": "written by `madbench regress --update`; last-generation seed means"})
        print(f"madbench regress: wrote {ref_path}")
        reference = io.read_json(ref_path)
    changed = config_changes(reference.get("config", {}), cfg.to_dict()) if reference else None
    drift_ref = reference if changed == [] else None
    rows = evaluate(results, args.mitigations, drift_ref)
    if full and changed:  # the full benchmark must match its reference: a config change needs --update
        rows.append({"mitigation": "reference", "metric": "config", "baseline": None, "value": None, "reference": None,
                     "ok": False, "verdict": f"FAIL: config differs at {', '.join(changed[:4])}; run `madbench regress --update` deliberately"})
    print_table(rows)
    if drift_ref is None:
        why = "no reference file" if reference is None else "this benchmark's config differs from the reference's"
        print(f"(drift check skipped: {why})")
    failed = [r for r in rows if not r["ok"]]
    wall = time.perf_counter() - start
    print(f"madbench regress: {len(rows) - len(failed)}/{len(rows)} checks passed in {wall:.0f}s"
          + (f"; FAILED: {', '.join(sorted({r['mitigation'] + ' ' + r['metric'] for r in failed}))}" if failed else ""))
    return 1 if failed else 0
