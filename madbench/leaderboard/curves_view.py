"""Curves as small multiples: one card per model and regime (never two models on one axis).

    madbench leaderboard build        # curves.html (every submission), t/TRACK.html (a track's runs)

Each card draws the headline metrics (:data:`madbench.headline.CURVES`) against generation, one line per
(submission, mitigation set) with its 95% seed band, under one legend in HTML (full labels, never cut),
in colours that no two lines of a card share; behind each chart a ``<details>`` table gives the same
numbers per generation (mean and 95% interval over seeds) for readers who would rather read numbers.
Every string is escaped; colours are SVG attributes, so the site's Content-Security-Policy holds.
"""

from __future__ import annotations

from html import escape
from typing import List

from madbench.headline import CURVES
from madbench.leaderboard.svg import color, fmt, line_chart
from madbench.reporting import stats


def _label(mitigations) -> str:
    return "+".join(mitigations) if mitigations else "none (baseline)"


def panels(subs: List[dict]) -> List[tuple]:
    """(model, regime label) pairs in first-seen order: one card each."""
    out = []
    for data in subs:
        for c in data["chains"]:
            key = (data["summary"]["model"], f"{c['regime']}/{c['mode']}")
            if key not in out:
                out.append(key)
    return out


def card_series(subs: List[dict], model: str, regime: str, metric: str) -> List[dict]:
    """One series per (submission, mitigation set) of one model and regime: seed mean, 95% band, per-generation rows."""
    found = [d for d in subs if d["summary"]["model"] == model
             and any(f"{c['regime']}/{c['mode']}" == regime for c in d["chains"])]
    out = []
    for data in found:
        chains = [c for c in data["chains"] if f"{c['regime']}/{c['mode']}" == regime]
        for group in stats.aggregate_chains(chains):
            rows = group["metrics"].get(metric) or []
            label = _label(group["mitigations"])
            if len(found) > 1:
                label += f" · {data['run']['name']} #{data['content_hash'][7:13]}"
            out.append({"label": label, "rows": rows, "points": [(r["generation"], r["mean"]) for r in rows],
                        "band": [(r["generation"], r["ci95_low"], r["ci95_high"]) for r in rows if r["n"] > 1]})
    return out


def _numbers(series: List[dict], metric: str) -> str:
    gens = sorted({r["generation"] for s in series for r in s["rows"]})
    head = "".join(f"<th>{escape(s['label'])}</th>" for s in series)
    body = []
    for g in gens:
        cells = []
        for s in series:
            r = next((r for r in s["rows"] if r["generation"] == g), None)
            if r is None or r["mean"] is None:
                cells.append('<td class="num"><span class="na">—</span></td>')
                continue
            ci = f' <span class="ci">[{fmt(r["ci95_low"])}, {fmt(r["ci95_high"])}]</span>' if r["n"] > 1 else ""
            cells.append(f'<td class="num">{fmt(r["mean"])}{ci} <span class="ci">n={r["n"]}</span></td>')
        body.append(f"<tr><td>{g}</td>{''.join(cells)}</tr>")
    return (f'<details class="numbers"><summary>{escape(metric)} per generation (table)</summary><div class="table-wrap">'
            f'<table class="plain"><thead><tr><th>gen</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div></details>")


def _legend(labels: List[str]) -> str:
    n = len(labels)
    items = "".join(f'<li><svg class="swatch" width="16" height="8" aria-hidden="true"><rect width="16" height="8" rx="3" '
                    f'fill="{color(i, n)}"/></svg>{escape(label)}</li>' for i, label in enumerate(labels))
    return f'<ul class="legend-list">{items}</ul>'


def render_card(subs: List[dict], model: str, regime: str) -> str:
    charts, tables, labels = [], [], []
    for metric in CURVES:
        series = card_series(subs, model, regime, metric)
        labels = labels or [s["label"] for s in series]
        for i, s in enumerate(series):
            s["color"] = color(i, len(series))
        charts.append(f'<div class="chart-cell">{line_chart(series, title=metric, width=290, height=220, legend=False)}'
                      f"{_numbers(series, metric)}</div>")
    return (f'<div class="card curve-card" data-model="{escape(model)}" data-regime="{escape(regime)}">'
            f'<h3>{escape(model)} <span class="muted">·</span> {escape(regime)}</h3>{_legend(labels)}'
            f'<div class="charts">{"".join(charts)}</div></div>')


def render_grid(subs: List[dict]) -> str:
    cards = "".join(render_card(subs, model, regime) for model, regime in panels(subs))
    return cards or '<p class="muted">no curves yet</p>'


def render_page(subs: List[dict]) -> str:
    return ('<h1>Metric vs generation</h1><p class="muted">One card per model and regime, so that models with different '
            "perplexity scales never share an axis. Mean over seeds; a shaded band is the 95% interval where a run has "
            "several seeds. Each chart's numbers are in the table under it.</p>"
            f'<section id="curves"><div class="curve-grid">{render_grid(subs)}</div></section>')
