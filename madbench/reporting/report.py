"""Plot every metric against generation and write a short summary of one or several run folders.

    madbench report runs/smoke                           # -> runs/smoke/report/
    madbench report runs/seed0 runs/seed1 --out pooled   # pool the seeds of several runs
    madbench report runs/smoke --metrics perplexity,distinct_2

Writes ``metric_<name>.png`` per metric, ``headline.png`` (a grid of the headline
metrics), ``tail_density.png`` (per chain, the density of per-sample perplexity under
generation 0, one curve per generation, as in Shumailov et al. 2024), ``report.md`` and ``report.html`` (headline metrics per chain at
generation 0 and at the last generation, per group mean and 95% interval over
seeds). Works on partial runs: a chain shows the generations it has finished.
"""

from __future__ import annotations

import difflib
import html
from pathlib import Path

from madbench.results import fileio
from madbench.reporting import plots
from madbench.reporting import uncertainty
from madbench.config.dotted import flatten
from madbench.errors import MadbenchError
from madbench.headline import REPORT_ORDER
from madbench.results.run_store import RunStore
from madbench.reporting.stats import aggregate_chains, group_label, group_key, last_generation_table

MAX_HEADLINE = 6  # the headline grid and tables: headline.REPORT_ORDER first when present, the rest fill up
# config keys expected to differ between runs that are pooled (they define the groups and seeds)
POOL_IGNORED = ("name", "seed", "loop.seeds", "loop.regimes", "loop.mitigations", "eval.")


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folder(s) holding results.json; several are pooled")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/report; required with several runs)")
    p.add_argument("--metrics", help="comma-separated metrics to plot and tabulate (default: every metric)")


def main(args) -> int:
    results = [load(Path(d)) for d in args.runs]
    if args.out:
        out = Path(args.out)
    elif len(args.runs) == 1:
        out = RunStore(args.runs[0]).report_dir
    else:
        raise MadbenchError("several run folders are pooled into one report: give its folder with --out DIR")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    path = render(results, out, metrics=metrics)
    print(f"madbench: report in {path} ({path / 'report.html'})")
    return 0


def load(run_dir: Path) -> dict:
    from madbench.results.collect import load_results

    if not run_dir.is_dir():
        raise MadbenchError(f"run folder {run_dir} not found; give a folder written by madbench run")
    from madbench.results.integrity import verify

    verify(run_dir)  # a damaged generation folder: one line naming the file and --repair
    return load_results(run_dir)


def write_report(run_dir: Path, out_dir: Path | None = None) -> Path:
    """Report for one run folder (called at the end of every ``madbench run``); returns the report folder."""
    run_dir = Path(run_dir)
    return render([load(run_dir)], Path(out_dir) if out_dir else RunStore(run_dir).report_dir)


def render(results_list: list[dict], out_dir: Path, metrics: list[str] | None = None) -> Path:
    """Write the PNGs, report.md and report.html for results.json dicts (pooled); returns out_dir."""
    out_dir = Path(out_dir)
    results_list = [results_list] if isinstance(results_list, dict) else list(results_list)
    chains, notes = _pooled_chains(results_list)
    info = {}
    for r in results_list:
        for key, value in (r.get("metrics_info") or {}).items():
            info.setdefault(key, value)
    available = sorted({k for c in chains for g in c.get("generations") or [] for k in (g.get("metrics") or {})})
    chosen = _choose(metrics, available)
    headline = headline_columns(chosen)
    groups = aggregate_chains(chains)
    uncertainty.group_bands(chains, groups)  # estimator intervals, drawn as bands beside the seed bands

    images = []
    if headline:
        title = ", ".join(dict.fromkeys(str(r.get("run_name", "")) for r in results_list))
        images.append(plots.headline_figure(groups, headline, info, out_dir / "headline.png", title=title).name)
    used = set()
    for metric in chosen:
        name = plots.safe_name(metric)
        while name in used:
            name += "_"
        used.add(name)
        images.append(plots.metric_figure(groups, metric, info.get(metric), out_dir / f"metric_{name}.png").name)

    # the reference panel (metrics/tail.py); with --metrics, only when a tail_* metric is chosen
    wanted = not metrics or any(m.startswith("tail_") for m in chosen)
    tail = plots.tail_figure(chains, out_dir / "tail_density.png") if wanted else None
    if tail is not None:
        images.insert(1 if headline else 0, tail.name)
    summary = _summary(results_list, chains, headline, info, notes)
    fileio.atomic_write_text(out_dir / "report.md", _markdown(summary, images))
    fileio.atomic_write_text(out_dir / "report.html", _html(summary, images))
    return out_dir


def headline_columns(chosen: list[str]) -> list[str]:
    """The headline grid's and tables' metrics: those of headline.REPORT_ORDER present, then the rest, up to MAX_HEADLINE."""
    headline = [m for m in REPORT_ORDER if m in chosen]
    headline += [m for m in chosen if m not in headline][: max(0, MAX_HEADLINE - len(headline))]
    return headline[:MAX_HEADLINE]


def _choose(metrics: list[str] | None, available: list[str]) -> list[str]:
    if not metrics:
        return available
    for m in metrics:
        if m not in available:
            close = difflib.get_close_matches(m, available, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise MadbenchError(f"metric '{m}' is not in these results; {hint}available: {', '.join(available) or 'none yet'}")
    return list(dict.fromkeys(metrics))


def _pooled_chains(results_list: list[dict]) -> tuple[list[dict], list[str]]:
    """All chains, the same run given twice counted once; notes on what pooling mixed."""
    chains, seen, notes, twice = [], set(), [], []
    for r in results_list:
        for c in r.get("chains") or []:
            key = (r.get("config_hash"), c.get("id"))
            if key in seen:
                twice.append(str(c.get("id")))
                continue
            seen.add(key)
            chains.append(c)
    if twice:
        notes.append(f"{len(twice)} chain(s) given twice (same config hash and id), counted once: " + ", ".join(twice))
    if len(results_list) > 1:
        flats = [flatten(r.get("config") or {}) for r in results_list]
        keys = sorted({k for f in flats for k in f})
        differ = [k for k in keys if not k.startswith(POOL_IGNORED) and len({repr(f.get(k)) for f in flats}) > 1]
        if differ:
            notes.append("the pooled runs differ in " + ", ".join(differ)
                         + "; chains are grouped by regime/mode/mitigations only")
    return chains, notes


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}"


def _with_interval(gen: dict, metric: str) -> str:
    iv = uncertainty.interval(gen, metric)
    value = _fmt((gen.get("metrics") or {}).get(metric))
    return value + (f" [{_fmt(iv[0])}, {_fmt(iv[1])}]" if iv else "")


def _change(chain: dict, first: dict, last: dict, metric: str) -> str:
    """'gen-0 value [95%] → last value [95%]', marked 'not resolved' when the two intervals overlap."""
    cell = f"{_with_interval(first, metric)} → {_with_interval(last, metric)}"
    return cell + (" (not resolved)" if uncertainty.resolved(chain, metric) is False else "")


def _summary(results_list, chains, headline, info, notes) -> dict:
    """Everything the md and html writers show, as plain strings (escaped by each writer)."""
    from madbench.metrics.intervals import APPROXIMATE  # the metrics whose interval coverage falls short

    arrows = {m: {True: " ↑", False: " ↓"}.get((info.get(m) or {}).get("higher_is_better"), "") for m in headline}
    header = ["chain", "group", "seed", "generations"]
    header += [f"{m}{arrows[m]} gen 0 → last" + (" (interval approximate)" if m in APPROXIMATE else "") for m in headline]
    chain_rows = []
    for c in chains:
        gens = c.get("generations") or []
        first = gens[0] if gens else {}
        last = gens[-1] if gens else {}
        done = f"0-{last['generation']}" if gens else "none"
        done += "" if c.get("complete") else " (incomplete)"
        row = [str(c.get("id")), group_label(group_key(c)), str(c.get("seed")), done]
        row += [_change(c, first, last, m) for m in headline]
        chain_rows.append(row)
    group_rows, group_header = [], []
    table = last_generation_table({"chains": chains}, headline) if chains else []  # duplicates already dropped
    if any(len(r["seeds"]) > 1 for r in table):
        # n counts independent units: seeds, or an ecosystem's base seeds (its members share their mixes)
        group_header = ["group", "n (independent units)", "last generation"] + [f"{m}{arrows[m]} mean [95% CI]" for m in headline]
        for r in table:
            members = f", {len(r['seeds'])} members" if len(r["seeds"]) != len(r["units"]) else ""
            cells = [r["label"], f"{len(r['units'])} {r['n_counts']}{members}", str(r["generation"])]
            for m in headline:
                s = r["metrics"][m]
                spread = f", members sd {_fmt(s['member_std'])}" if s.get("member_std") is not None else ""
                cells.append(f"{_fmt(s['mean'])} [{_fmt(s['ci95_low'])}, {_fmt(s['ci95_high'])}] (n={s['n']}{spread})"
                             if s["n"] else "-")
            group_rows.append(cells)
    meta = []
    for r in results_list:
        cfg = r.get("config") or {}
        git = (r.get("environment") or {}).get("git") or {}
        meta.append(f"run {r.get('run_name')}: model {(cfg.get('model') or {}).get('name')}, "
                    f"corpus {(cfg.get('data') or {}).get('corpus')}, "
                    f"{(cfg.get('loop') or {}).get('generations')} generations, seeds {(cfg.get('loop') or {}).get('seeds')}, "
                    f"config {r.get('config_hash')}, git {str(git.get('commit'))[:10]}"
                    + ("" if r.get("complete") else ", INCOMPLETE"))
    if any(g.get("intervals") for c in chains for g in c.get("generations") or []):
        notes = notes + ["[low, high]: 95% estimator interval from the samples (or held-out documents) a value was scored "
                         "on. not resolved: the interval at the last generation overlaps the one at generation 0, so "
                         "the change may be noise of the sample count (seed variance is separate: see the per-group table)"]
    shown = [m for m in headline if m in APPROXIMATE]
    if shown and any(g.get("intervals") for c in chains for g in c.get("generations") or []):
        notes = notes + ["interval approximate (its measured coverage falls short of 90-99%, docs/metrics.md): "
                         + "; ".join(f"{m}: {APPROXIMATE[m]}" for m in shown)]
    title = "madbench report: " + ", ".join(dict.fromkeys(str(r.get("run_name")) for r in results_list))
    return {"title": title, "meta": meta, "notes": notes, "header": header, "rows": chain_rows,
            "group_header": group_header, "group_rows": group_rows,
            "empty": "no chain has finished a generation yet" if not any(c.get("generations") for c in chains) else ""}


def _md_cell(s: str) -> str:
    return html.escape(" ".join(str(s).split())).replace("|", "\\|")


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]


def _markdown(s: dict, images: list[str]) -> str:
    lines = [f"# {_md_cell(s['title'])}", ""] + [f"- {_md_cell(m)}" for m in s["meta"] + s["notes"]] + [""]
    if s["empty"]:
        lines += [s["empty"], ""]
    lines += ["## Headline metrics per chain (generation 0 and last)", ""] + _md_table(s["header"], s["rows"]) + [""]
    if s["group_rows"]:
        lines += ["## Per group over seeds, last generation", ""] + _md_table(s["group_header"], s["group_rows"]) + [""]
    lines += ["## Plots", ""] + [f"![{_md_cell(img)}]({img})" for img in images]
    return "\n".join(lines) + "\n"


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _html(s: dict, images: list[str]) -> str:
    e = html.escape
    parts = [
        "<!doctype html>\n<html><head><meta charset='utf-8'>", f"<title>{e(s['title'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,td:nth-child(2){text-align:left}"
        "img{max-width:100%;margin:8px 0}</style></head><body>",
        f"<h1>{e(s['title'])}</h1>", "<ul>" + "".join(f"<li>{e(m)}</li>" for m in s["meta"] + s["notes"]) + "</ul>",
    ]
    if s["empty"]:
        parts.append(f"<p>{e(s['empty'])}</p>")
    parts += ["<h2>Headline metrics per chain (generation 0 and last)</h2>", _html_table(s["header"], s["rows"])]
    if s["group_rows"]:
        parts += ["<h2>Per group over seeds, last generation</h2>", _html_table(s["group_header"], s["group_rows"])]
    parts.append("<h2>Plots</h2>")
    parts += [f"<div><a href='{e(img)}'><img src='{e(img)}' alt='{e(img)}'></a></div>" for img in images]
    return "\n".join(parts) + "\n</body></html>\n"
