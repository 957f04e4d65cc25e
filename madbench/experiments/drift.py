"""The drift check of ``madbench regress``: this run's seeds against the reference's, as distributions.

    madbench regress                     # drift rows at the bottom of the table
    madbench regress --seeds 8 9 10 11 12 13 14 15   # an honest new draw: passes

Floating-point kernels differ between processors (and a code change may reorder random draws), so
the same seed can follow another trajectory: a run is a new draw from the benchmark's distribution,
not a copy of the reference. The reference therefore stores every seed's last-generation value
(``values[group][metric]``, in ``seeds`` order) and the processor it was made on, and each
(group, metric) is checked with a two-sample test:

- a two-sided permutation test (``madbench.reporting.stats.permutation_p``) of the run's seeds against the
  reference's seeds on the difference of mean log values (a relative shift); distribution-free, so
  under "same distribution" its false-alarm rate is the level it is tested at, heavy tails included;
- Bonferroni over all drift checks of the run: the chance that an honest draw fails *any* drift
  check is at most ``FAMILY_ALPHA`` (1%);
- a FAIL also needs the shift (ratio of geometric means - 1) to be at least ``MIN_EFFECT[metric]``,
  so that a real but negligible difference (a library rounding change) is not a regression.

The reference holds 16 seeds (100-115) and a check runs 8 others (0-7): the two samples are independent,
as a permutation test assumes (a seed the run shares with the reference is left out of the reference's
side, since on the reference's processor it reproduces its value exactly). On recorded draws (tests/data/regress_draws/)
mix_real at half its fraction (+4% perplexity) gives p = 0.0002 against the 16-seed reference but only
0.001 against 8 seeds, where the level of one of 15 checks is 0.00067.

On the reference's own processor kind, an unchanged code base reproduces every seed's value exactly;
the table's footer says how many did, which separates "numbers changed" from "distribution changed".
With the reference's processor kind *and* library versions, a seed shared with the reference must
reproduce its value exactly: a mismatch is a FAIL (``--update`` when the change is intended).

A check the seeds cannot decide is "not tested" and counts as not passed: fewer than 2 seeds a side,
or so few that even two completely separated groups do not reach the per-check level (2 against 2
seeds: p >= 1/3 whatever the shift; ``smallest_p``); a shared seed on another processor kind leaves
the reference's side. When no drift row is tested, regress says why in one line.
"""

from __future__ import annotations

import math
from pathlib import Path

from madbench.results import fileio
from madbench.errors import MadbenchError

FORMAT = 2
CHECKED = ("perplexity", "distinct_2", "type_token_ratio")  # metrics checked for drift
FAMILY_ALPHA = 0.01  # family-wise false-alarm rate of all drift checks together (Bonferroni)
MIN_EFFECT = {"perplexity": 0.02, "distinct_2": 0.05, "type_token_ratio": 0.05}  # relative shift a FAIL needs
PERMUTATION_RESAMPLES = 100_000  # permutation_p's budget: exact up to that many splits


def read_reference(path: Path) -> dict | None:
    """The reference file, or None when there is none; one clear error when it is of the old kind or damaged."""
    if not path.is_file():
        return None
    ref = fileio.read_json(path)
    if not isinstance(ref, dict) or ref.get("format") != FORMAT or not isinstance(ref.get("values"), dict):
        raise MadbenchError(f"{path} is not a per-seed regress reference (format {FORMAT}); rewrite it with "
                            f"`madbench regress --update --reference {path}`")
    for label, metrics in ref["values"].items():
        for metric, values in (metrics or {}).items():
            if not isinstance(values, list):
                raise MadbenchError(f"{path}: values.{label}.{metric} must list one value per seed; rewrite it with --update")
    return ref


def reference_record(cfg, results: dict, by_label: dict, labels, last_value) -> dict:
    """The reference written by ``--update``: config, processor, library versions and every seed's values."""
    from madbench.results.environment import processor

    env = results.get("environment") or {}
    seeds = sorted({c["seed"] for chains in by_label.values() for c in chains})
    values = {}
    for label in labels:
        per_seed = {c["seed"]: c for c in by_label.get(label, [])}
        values[label] = {m: [last_value(per_seed[s], m) if s in per_seed else None for s in seeds] for m in CHECKED}
    return {"format": FORMAT, "config_hash": cfg.hash(), "config": cfg.to_dict(), "seeds": seeds,
            "processor": env.get("processor") or processor(), "versions": env.get("versions"),
            "git": env.get("git"), "test": {"family_alpha": FAMILY_ALPHA, "min_effect": dict(MIN_EFFECT),
                                            "statistic": "two-sided permutation test of mean log values, Bonferroni over the drift checks"},
            "values": values, "note": "written by `madbench regress --update`; last-generation value of every seed"}


def smallest_p(n: int, m: int, resamples: int = PERMUTATION_RESAMPLES) -> float:
    """The smallest two-sided p-value ``permutation_p`` can return for n and m values: the two groups
    completely separated. Exact (2 / C(n+m, n)) when every split is enumerated, else Monte Carlo's floor."""
    splits = math.comb(n + m, n)
    return min(1.0, 2 / splits) if splits <= resamples else 2 / (resamples + 1)


def seeds_needed(m: int, level: float) -> int | None:
    """How many seeds a run needs against m reference seeds for a permutation test to reach ``level``."""
    return next((n for n in range(2, 65) if smallest_p(n, m) < level), None)


def drift_verdict(reference: list, values: list, metric: str, level: float) -> tuple[bool, str]:
    """(ok, verdict) of one drift check at per-check level ``level``. A check the seeds cannot decide
    (fewer than 2 a side, or too few for any split to reach ``level``) is "not tested" and not ok:
    a check that cannot fail is no check."""
    from madbench.reporting.stats import clean, permutation_p, relative_shift

    ref, run = clean(reference), clean(values)
    if not run:
        return False, "FAIL: no results"
    if len(ref) < 2 or len(run) < 2:
        return False, f"not tested ({len(run)} seed(s) here, {len(ref)} independent reference seed(s): needs 2 on each side)"
    floor = smallest_p(len(ref), len(run))
    if floor >= level:
        need = seeds_needed(len(ref), level)
        return False, (f"not tested ({len(run)} seeds here against {len(ref)} reference seeds: the smallest p is {floor:.2g}, "
                       f"not below the level {level:.2g}" + (f"; run at least {need} seeds)" if need else ")"))
    p = permutation_p(ref, run, resamples=PERMUTATION_RESAMPLES)
    shift = relative_shift(ref, run) or 0.0
    minimum = MIN_EFFECT.get(metric, 0.05)
    fail = p is not None and p < level and abs(shift) >= minimum
    text = f"shift {shift * 100:+.1f}%, p={p:.2g}" if p is not None else f"shift {shift * 100:+.1f}%"
    return (not fail), (f"FAIL: drift ({text} < {level:.2g}, |shift| >= {minimum:.0%})" if fail else f"ok ({text})")


def drift_rows(by_label: dict, reference: dict, last_value, environment: dict | None = None) -> list[dict]:
    """One row per (group, checked metric) present in both this run and the reference. A row is "ok",
    a FAIL, or "not tested" (``untested``: not ok). Where this run shares seeds with the reference and
    ``environment`` (this run's results.json ``environment``) has the reference's processor kind and
    library versions, every shared seed must reproduce its reference value exactly: a mismatch FAILs,
    and an exact match is a tested check even when the distribution test cannot decide."""
    from madbench.reporting.stats import seed_summary

    ref_values = reference.get("values") or {}
    checks = [(label, metric) for label in by_label for metric in CHECKED]
    level = FAMILY_ALPHA / max(1, len(checks))
    exact = same_numerics(reference, environment)
    rows = []
    ref_seeds = reference.get("seeds") or []
    for label, metric in checks:
        run_seeds = {c["seed"] for c in by_label[label]}
        whole = (ref_values.get(label) or {}).get(metric)
        ref = independent(whole, ref_seeds, run_seeds)
        run = [last_value(c, metric) for c in by_label[label]]
        rs, ss = seed_summary(ref or []), seed_summary(run)
        untested = False
        if ref is None:
            ok, verdict = False, "FAIL: no reference value (rewrite the reference with --update)"
        else:
            ok, verdict = drift_verdict(ref, run, metric, level)
            untested = verdict.startswith("not tested")
            shared = sorted(run_seeds & set(ref_seeds)) if whole is not None and len(whole) == len(ref_seeds) else []
            if shared and exact:
                theirs = dict(zip(ref_seeds, whole))
                ours = {c["seed"]: last_value(c, metric) for c in by_label[label]}
                wrong = [s for s in shared if not _equal(theirs[s], ours[s])]
                if wrong:
                    s = wrong[0]
                    ok, untested = False, False
                    verdict = (f"FAIL: not reproduced: seed {s} gives {_num(ours[s])}, the reference {_num(theirs[s])}"
                               f"{f' ({len(wrong)}/{len(shared)} shared seeds differ)' if len(wrong) > 1 else ''} on the same "
                               "processor kind and library versions (--update if the change is intended)")
                elif untested:
                    ok, untested = True, False
                    verdict = f"ok (reproduced exactly: {len(shared)} shared seed(s), same processor kind and versions)"
                else:
                    verdict += f"; {len(shared)} shared seed(s) reproduced exactly"
            elif shared:
                verdict += f"; {len(shared)} seed(s) shared with the reference left out of it"
        rows.append({"mitigation": label, "metric": metric, "baseline": None, "value": ss["mean"], "value_sd": ss["std"],
                     "reference": rs["mean"], "reference_sd": rs["std"], "ok": ok, "verdict": verdict, "drift": True,
                     "untested": untested})
    return rows


def same_numerics(reference: dict, environment: dict | None) -> bool:
    """True when this run was made on the reference's processor kind with its library versions: then a
    shared seed reproduces its reference value bit for bit, unless the code changed the numbers."""
    from madbench.results.environment import processor

    if environment is None:
        return False
    ref_kind = (reference.get("processor") or {}).get("kind")
    run_kind = (environment.get("processor") or processor()).get("kind")
    theirs, ours = reference.get("versions") or {}, environment.get("versions") or {}
    return bool(ref_kind) and ref_kind == run_kind and bool(theirs) and all(theirs.get(k) == ours.get(k) for k in theirs)


def untested_reason(reference: dict, run_seeds, n_checks: int, exact: bool) -> str:
    """One line: why no drift check of this run could be tested (overlapping seeds, or too few)."""
    ref_seeds = reference.get("seeds") or []
    shared = sorted(set(run_seeds) & set(ref_seeds))
    left = len([s for s in ref_seeds if s not in set(run_seeds)])
    if shared:
        where = ("" if exact else ", and this run is not on the reference's processor kind and library versions, "
                 "where a shared seed would have to reproduce it exactly")
        return (f"no drift check was tested: the seeds ({' '.join(map(str, sorted(run_seeds)))}) overlap the reference's "
                f"({' '.join(map(str, ref_seeds))}), which leaves {left} independent reference seed(s){where}; "
                "run seeds disjoint from the reference's")
    level = FAMILY_ALPHA / max(1, n_checks)
    need = seeds_needed(left, level)
    return (f"no drift check was tested: {len(set(run_seeds))} seeds here against {left} reference seeds cannot reach "
            f"p < {level:.2g} ({n_checks} checks at a {FAMILY_ALPHA:.0%} family-wise rate)"
            + (f"; run at least {need} seeds" if need else "; write a reference with more seeds"))


def _num(v) -> str:
    return "-" if v is None else f"{float(v):.10g}"


def independent(values, ref_seeds: list, run_seeds: set):
    """The reference's values of the seeds this run did not use: a permutation test needs two independent
    samples, and on the reference's processor a shared seed reproduces its reference value exactly."""
    if values is None:
        return None
    if len(values) != len(ref_seeds):  # an old reference without per-seed alignment: use it whole
        return list(values)
    return [v for s, v in zip(ref_seeds, values) if s not in run_seeds]


def same_processor_note(reference: dict, results: dict) -> str:
    """Where the reference and this run were made, and (on the same processor kind) how many seed values reproduce."""
    from madbench.results.environment import processor

    ref_kind = (reference.get("processor") or {}).get("kind") or "unknown"
    run_kind = ((results.get("environment") or {}).get("processor") or processor())["kind"]
    line = f"reference made on {ref_kind} (torch {(reference.get('versions') or {}).get('torch')}); this run on {run_kind}"
    if ref_kind != run_kind:
        return line + ": another processor kind, so seeds follow other trajectories and only distributions are compared"
    seeds = reference.get("seeds") or []
    same = total = 0
    for chain in results.get("chains") or []:
        label = "+".join(chain["mitigations"]) or "baseline"
        row = (reference.get("values") or {}).get(label) or {}
        if chain["seed"] not in seeds or not row:
            continue
        i = seeds.index(chain["seed"])
        gens = chain.get("generations") or []
        last = gens[-1]["metrics"] if gens else {}
        total += 1
        same += all(_equal(row.get(m, [None] * len(seeds))[i], last.get(m)) for m in CHECKED)
    if not total:
        return line + ": same processor kind; no seed in common with the reference (independent draws)"
    return line + f": same processor kind; {same}/{total} chains reproduce the reference's values exactly" + (
        "" if same == total else " (the code changes the numbers: the distribution test decides; --update if intended)")


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
