"""Gather a sweep: results.json per variant, then seed statistics over all of them.

    madbench sweep --config sweeps/default.yaml       # ends by calling gather()

Writes ``SWEEP/sweep_summary.json`` (groups with per-generation mean and 95% CI of
every metric, the last-generation table, comparisons) and ``SWEEP/sweep_summary.md``,
plus plots with seed bands from :func:`madbench.reporting.report.render` under ``SWEEP/report/``.
Comparisons, at the last generation, over independent units (:func:`madbench.reporting.stats.compare`,
Welch p-values Holm-adjusted over the family printed):
every regime against every other (unmitigated chains), every mitigation set against
the unmitigated chains of the same regime, and every variant against the first one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from madbench.results import fileio
from madbench.results.run_store import RunStore
from madbench.reporting.stats import (aggregate_chains, compare, group_key, group_label, holm, last_generation_table,
                                      unit_of)


def gather(variants: List[dict], sweep_dir: Path, environments: Dict[str, dict]) -> dict | None:
    """Write results.json in every variant's run folder and the sweep summary; return counts."""
    from madbench.results.collect import collect, write_results

    gathered = []
    for v in variants:
        run_dir = sweep_dir / "runs" / v["id"]
        if not RunStore(run_dir).config.is_file():
            continue
        env = environments.get(v["id"]) or _local_environment()
        results = collect(run_dir, v["config"], v["chains"], env)
        write_results(run_dir, results)
        gathered.append((v["id"], results))
    if not gathered:
        return None
    summary = summarize(gathered)
    fileio.write_json(sweep_dir / "sweep_summary.json", summary)
    fileio.atomic_write_text(sweep_dir / "sweep_summary.md", markdown(summary))
    _plots(gathered, sweep_dir / "report")
    return {"groups": len(summary["groups"]), "comparisons": len(summary["comparisons"])}


def _local_environment() -> dict:
    from madbench.results.environment import environment

    return environment()


def _plots(gathered, out: Path) -> None:
    from madbench.reporting.report import render

    if len(gathered) == 1:
        render([gathered[0][1]], out)
    else:  # variants differ in more than seeds: never pool them into one band
        for vid, results in gathered:
            render([results], out / vid)


def _final_values(results: dict, key: tuple, metric: str) -> List[float]:
    """One value per independent unit (a seed; an ecosystem's base seed, its members averaged): the metric at
    the configured last generation (chains that reached it)."""
    last = results["config"]["loop"]["generations"]
    pairs = []
    for chain in results["chains"]:
        if group_key(chain) != key:
            continue
        for gen in chain["generations"]:
            if gen["generation"] == last and gen["metrics"].get(metric) is not None:
                pairs.append((unit_of(chain), gen["metrics"][metric]))
    by_unit: Dict = {}
    for unit, value in pairs:
        by_unit.setdefault(unit, []).append(value)
    return [sum(vs) / len(vs) for vs in by_unit.values()]


def summarize(gathered: List[tuple]) -> dict:
    """gathered: [(variant id, results.json dict)] -> the sweep summary (plain JSON)."""
    info: Dict[str, dict] = {}
    for _, results in gathered:
        info.update(results["metrics_info"])
    metrics = sorted(info)
    many = len(gathered) > 1
    groups, table, comparisons = [], [], []

    def name(vid, key):
        return f"{vid}: {group_label(key)}" if many else group_label(key)

    def add(kind, vid_a, key_a, res_a, vid_b, key_b, res_b):
        for metric in metrics:
            a, b = _final_values(res_a, key_a, metric), _final_values(res_b, key_b, metric)
            if not a or not b:
                continue
            c = compare(a, b, info[metric].get("higher_is_better"))
            c["a_summary"], c["b_summary"] = c.pop("a"), c.pop("b")
            comparisons.append({"kind": kind, "a": name(vid_a, key_a), "b": name(vid_b, key_b), "metric": metric,
                                "generation": res_b["config"]["loop"]["generations"], **c})

    for vid, results in gathered:
        for g in aggregate_chains(results["chains"]):
            groups.append({"variant": vid, **g, "label": name(vid, group_key(g))})
        for row in last_generation_table(results, metrics):
            table.append({"variant": vid, **row, "label": name(vid, group_key(row))})
        keys = list(dict.fromkeys(group_key(c) for c in results["chains"]))
        base = [k for k in keys if not k[2]]
        for i, ka in enumerate(base):
            for kb in base[i + 1:]:
                add("regime", vid, ka, results, vid, kb, results)
        for kb in keys:
            if kb[2] and (kb[0], kb[1], ()) in keys:
                add("mitigation", vid, (kb[0], kb[1], ()), results, vid, kb, results)
    if many:
        vid0, res0 = gathered[0]
        keys0 = {group_key(c) for c in res0["chains"]}
        for vid, results in gathered[1:]:
            for key in dict.fromkeys(group_key(c) for c in results["chains"]):
                if key in keys0:
                    add("variant", vid0, key, res0, vid, key, results)
    # the family is every comparison printed: Holm's step-down adjustment keeps its family-wise error at 5%
    for c, adjusted in zip(comparisons, holm([c["welch_p"] for c in comparisons])):
        c["welch_p_holm"] = adjusted
        c["separated"] = bool(c["separated"] and adjusted is not None and adjusted < 0.05)
    return {"metrics_info": info, "variants": [vid for vid, _ in gathered], "groups": groups,
            "last_generation": table, "comparisons": comparisons}


def _num(x, digits=4) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def markdown(summary: dict) -> str:
    info = summary["metrics_info"]
    metrics = sorted(info)
    arrow = {True: " ↑", False: " ↓", None: ""}
    lines = ["# Sweep summary", "",
             "Last generation of each group: mean ± half-width of the 95% Student-t interval over independent units "
             "(n units: seeds; for an ecosystem, base seeds, its members averaged first since they share their mixes; "
             "`members sd`: the spread between an ecosystem's members, not seed noise).", "",
             "| group | gen | " + " | ".join(f"{m}{arrow[info[m].get('higher_is_better')]}" for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for row in summary["last_generation"]:
        cells = []
        for m in metrics:
            s = row["metrics"][m]
            half = None if s["ci95_high"] is None else (s["ci95_high"] - s["ci95_low"]) / 2
            spread = f"; members sd {_num(s['member_std'], 2)}" if s.get("member_std") is not None else ""
            cells.append("–" if s["mean"] is None else f"{_num(s['mean'])} ± {_num(half, 2)} (n={s['n']}{spread})")
        units = f" ({len(row.get('units') or row['seeds'])} {row.get('n_counts', 'seeds')})"
        lines.append(f"| {row['label']}{units} | {row['generation']} | " + " | ".join(cells) + " |")
    lines += ["", "## Comparisons (b against a, last generation, over seeds)", "",
              f"n counts independent units (seeds; an ecosystem's base seeds). Welch p is adjusted with Holm's method over "
              f"the family of all {len(summary['comparisons'])} comparisons below (family-wise error 5%). `separated`: "
              "2 or more units a side, the 95% intervals do not overlap, and the Holm-adjusted p is below 0.05 (so the 95% "
              "Welch interval of the difference excludes 0); with 2 units the t multiplier is 12.7. "
              "Hedges' g: bias-corrected effect size (b − a) / pooled SD.", "",
              "| kind | a | b | metric | diff (b − a) [95% Welch CI] | Hedges' g | Welch p | Holm p | separated | b better |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["comparisons"]:
        better = {True: "yes", False: "no", None: "–"}[c["better"]]
        ci = c.get("diff_ci95")
        diff = _num(c["diff"]) + (f" [{_num(ci[0], 3)}, {_num(ci[1], 3)}]" if ci else "")
        lines.append(f"| {c['kind']} | {c['a']} | {c['b']} | {c['metric']} | {diff} | {_num(c['hedges_g'], 3)} | "
                     f"{_num(c['welch_p'], 2)} | {_num(c.get('welch_p_holm'), 2)} | {'yes' if c['separated'] else 'no'} | {better} |")
    if not summary["comparisons"]:
        lines.append("| – | | | | | | | | | |")
    return "\n".join(lines) + "\n"
