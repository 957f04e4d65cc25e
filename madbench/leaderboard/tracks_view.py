"""The leaderboard's track tables: each track's mitigations in tiers the seeds can tell apart.

    madbench leaderboard build        # index.html: one tiered table per track, then the open submissions

Rows come from every submission of the track (each carries its own baseline chains, so an effect
is always measured against the baseline of the same run and seed). Each row shows the effect at
the last generation, with its 95% seed interval, on the track's panel: the ranked metric
(perplexity), diversity (distinct-2), the tail signature (W1 of per-sample log perplexity under
generation 0) and a task score where the run has them; and on the mitigation's own declared
``target_metric``. Mitigations are grouped into tiers (:mod:`madbench.leaderboard.tiers`, the rule
is printed above the table); those within the track's human-data budget are tiered first, those
over it after them, marked.
"""

from __future__ import annotations

from html import escape
from typing import Dict, List, Optional

from madbench.config.tracks import TRACKS, human_share
from madbench.headline import DIVERSITY
from madbench.leaderboard import tiers
from madbench.leaderboard.external import is_external
from madbench.leaderboard.svg import fmt
from madbench.reporting import stats

TAIL = "tail_w1_log_ppl"  # the tail signature: how far the samples' perplexity density moved from generation 0's


def _pct(v) -> str:
    return '<span class="na">—</span>' if v is None else f"{v:+.1f}%"


def _interval(ci) -> str:
    lo, hi = ci
    return '<span class="na">—</span>' if lo is None or hi is None else f"[{lo:+.1f}, {hi:+.1f}]"


def _direction(data: dict, metric: str) -> Optional[bool]:
    from madbench.metrics import METRICS

    info = (data.get("metrics_info") or {}).get(metric) or {}
    if "higher_is_better" in info:
        return info["higher_is_better"]
    return METRICS.spec(metric).higher_is_better if metric in METRICS else None


def panel(subs: List[dict], name: str) -> List[str]:
    """The track's panel: its ranked metric, distinct-2, the tail signature and the first task score that its
    submissions measured (a metric no submission has is left out)."""
    tr = TRACKS.get(name)
    have = {k for d in subs if d.get("track") == name for c in d["chains"] for g in c["generations"] for k in g["metrics"]}
    tasks = sorted(k for k in have if "/" in k and any(_direction(d, k) is not None for d in subs if d.get("track") == name))
    return [m for m in dict.fromkeys([tr.metric, DIVERSITY, TAIL, *tasks[:1]]) if m == tr.metric or m in have]


def targets(data: dict, mitigations: List[str]) -> List[str]:
    """The declared target metric of each mitigation of a set: the registered class's, else the submission's
    plug-in declaration's (``plugins``), unique, in order."""
    from madbench.leaderboard.external import declared as plugin_names
    from madbench.mitigations import MITIGATIONS

    declared = {name: p.get("target_metric") for name, p in plugin_names(data, "mitigation").items()}
    found = [declared.get(m) if m in declared else MITIGATIONS.get(m).target_metric if m in MITIGATIONS else None
             for m in mitigations]
    return [t for t in dict.fromkeys(found) if t]


def _last_by_seed(chains: List[dict], metric: str) -> Dict[int, float]:
    out = {}
    for c in chains:
        value = c["generations"][-1]["metrics"].get(metric) if c["generations"] else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[int(c["seed"])] = float(value)
    return out


def effect(data: dict, chains: List[dict], base: List[dict], metric: str) -> dict:
    """Effect (%) of a chain group on one metric against the baseline chains of the same run, paired by seed,
    with the means of both (for a cell's tooltip)."""
    mine, theirs = _last_by_seed(chains, metric), _last_by_seed(base, metric)
    per_seed = tiers.paired_effect(mine, theirs)
    return {"metric": metric, "per_seed": per_seed, **tiers.effect_summary(per_seed, _direction(data, metric)),
            "mean": stats.seed_summary(list(mine.values()))["mean"],
            "baseline_mean": stats.seed_summary(list(theirs.values()))["mean"]}


def submission_rows(data: dict, name: str, metrics: List[str]) -> List[dict]:
    """One row per mitigation set of one track submission: panel effects, target effects, human data."""
    tr = TRACKS.get(name)
    groups: Dict[str, List[dict]] = {}
    for c in data["chains"]:
        groups.setdefault("+".join(c["mitigations"]), []).append(c)
    base = groups.pop("", [])
    base_share = stats.seed_summary([human_share(c) for c in base])["mean"] or 0.0
    rows = []
    for label, chains in groups.items():
        cells = {m: effect(data, chains, base, m) for m in metrics}
        own = [cells.get(t) or effect(data, chains, base, t) for t in targets(data, chains[0]["mitigations"])]
        share = stats.seed_summary([human_share(c) for c in chains])["mean"] or 0.0
        primary = cells[tr.metric]
        rows.append({"label": f"{label} · {data['content_hash'][7:13]}", "mitigation": label, "sub": data,
                     "per_seed": primary["per_seed"], "panel": cells, "targets": own,
                     "effect_pct": primary["effect_pct"], "ci95_pct": primary["ci95_pct"], "separated": primary["separated"],
                     "seeds": primary["n"], "human_share": share, "added_human_share": share - base_share,
                     "within_budget": share - base_share <= tr.human_budget + 1e-9,
                     "external": is_external(data, chains[0]["mitigations"])})
    return rows


def track_rows(subs: List[dict], name: str) -> List[dict]:
    """Tiered rows of one track over all its submissions: within-budget tiers first, then those over budget."""
    from madbench.metrics import metric_info

    tr = TRACKS.get(name)
    metrics = panel(subs, name)
    rows = [r for d in subs if d.get("track") == name for r in submission_rows(d, name, metrics)]
    hib = bool(metric_info(tr.metric)["higher_is_better"])
    within = tiers.assign_tiers([r for r in rows if r["within_budget"]], hib)
    top = max((r["tier"] for r in within if r["tier"]), default=0)
    over = tiers.assign_tiers([r for r in rows if not r["within_budget"]], hib, first_tier=top + 1)
    out = within + over
    for i, r in enumerate(out, 1):
        r["rank"] = i
    return out


def _effect_cell(cell: Optional[dict]) -> str:
    if not cell or cell["effect_pct"] is None:
        return '<td class="num"><span class="na">—</span></td>'
    tip = f"{fmt(cell['mean'])} vs baseline {fmt(cell['baseline_mean'])} at the last generation, {cell['n']} seeds"
    mark = ("sep-good" if cell["better"] else "sep-bad") if cell["separated"] else "sep-none"
    return (f'<td class="num effect {mark}" title="{escape(tip)}">{_pct(cell["effect_pct"])}'
            f'<div class="ci">{_interval(cell["ci95_pct"])}</div></td>')


def _target_cell(row: dict) -> str:
    if not row["targets"]:
        return '<td><span class="na">not declared</span></td>'
    return "<td>" + "".join(f'<div><code>{escape(t["metric"])}</code> {_pct(t["effect_pct"])} '
                            f'<span class="ci">{_interval(t["ci95_pct"])}</span></div>' for t in row["targets"]) + "</td>"


def render_track(subs: List[dict], name: str, page_id, root: str = "", link: bool = True) -> str:
    tr = TRACKS.get(name)
    cfg = tr.config()
    protocol = (f"model {cfg.model.name}, corpus {cfg.data.corpus}, regime {', '.join(cfg.loop.regimes)}, "
                f"{len(cfg.loop.seeds)} seeds, {cfg.loop.generations} generations, {cfg.sampling.num_samples} samples/generation")
    metrics, rows = panel(subs, name), track_rows(subs, name)
    arrows = {m: {True: " ↑", False: " ↓"}.get(next((_direction(d, m) for d in subs if d.get("track") == name), None), "")
              for m in metrics}
    head = ('<tr><th title="mitigations in one tier are not separated by the seeds (rule above)">Tier</th>'
            "<th>Mitigation</th><th>Submission</th>"
            + "".join(f'<th title="effect at the last generation vs the same run\'s baseline, paired by seed; 95% interval '
                      f'below">{escape(m)}{"" if m != tr.metric else " (ranked)"}{arrows[m]}</th>' for m in metrics)
            + '<th title="the metric the mitigation declares it improves (target_metric)">own target</th>'
            '<th title="mean share of human documents in the training mixes after generation 0">human data in mixes</th>'
            "<th>budget</th></tr>")
    body = []
    for r in rows:
        sub = r["sub"]
        budget = "within" if r["within_budget"] else f'<span class="over">over ({100 * r["added_human_share"]:.1f}%)</span>'
        ext = ' <span class="external" title="a plug-in: see the submission page">external</span>' if r["external"] else ""
        tier = "—" if r["tier"] is None else str(r["tier"])
        body.append(
            f'<tr class="{"" if r["within_budget"] else "over-budget"}" data-mitigation="{escape(r["mitigation"])}" '
            f'data-tier="{escape(tier)}"><td class="num tier">{escape(tier)}</td><td>{escape(r["mitigation"])}{ext}</td>'
            f'<td><a href="{root}s/{page_id(sub)}.html">{escape(sub["run"]["name"])}</a>'
            f'<div class="who">{escape(sub["submitter"]) or "anonymous"}</div></td>'
            + "".join(_effect_cell(r["panel"].get(m)) for m in metrics) + _target_cell(r)
            + f'<td class="num">{100 * r["human_share"]:.1f}%</td><td>{budget}</td></tr>')
    if not body:
        body.append(f'<tr><td colspan="{6 + len(metrics)}" class="muted">no submissions yet: madbench run --track '
                    f"{escape(name)} 'loop.mitigations=[yours]' then madbench submit runs/track-{escape(name)}</td></tr>")
    title = f'<a href="{root}t/{escape(name)}.html">Track {escape(name)}</a>' if link else f"Track {escape(name)}"
    return (f'<div class="card track" id="track-{escape(name)}" data-track="{escape(name)}"><h3>{title}</h3>'
            f'<p class="muted">{escape(tr.description)}. Protocol: {escape(protocol)}. Human-data budget: '
            f'{fmt(100 * tr.human_budget)}% of the mixes (mitigations over it are tiered after those within).</p>'
            f'<div class="table-wrap"><table class="plain track-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
            "</table></div></div>")


def what_works(subs: List[dict]) -> str:
    """The front page's answer, one line per track: its tier-1 mitigations within budget and whether they beat
    the baseline beyond the seed spread."""
    items = []
    for name in TRACKS.names():
        every = track_rows(subs, name)
        rows = [r for r in every if r["within_budget"] and r["tier"] == 1]
        if not rows:
            items.append(f"<li><b>{escape(name)}</b>: no submissions yet</li>")
            continue
        metric = TRACKS.get(name).metric
        parts = [f'{escape(r["mitigation"])} ({_pct(r["effect_pct"])} {escape(metric)} {_interval(r["ci95_pct"])}'
                 f'{", beats the baseline" if r["separated"] and r["panel"][metric]["better"] else ", not separated from the baseline"})'
                 for r in rows]
        items.append(f'<li><b><a href="t/{escape(name)}.html">{escape(name)}</a></b>: tier 1 of {len(every)}: '
                     f'{"; ".join(parts)}</li>')
    return f'<ul class="what-works">{"".join(items)}</ul>'


def render_tracks(subs: List[dict], page_id) -> str:
    return ('<section id="tracks"><h2>Tracks: what works, under one frozen protocol</h2>'
            '<p class="muted">Each cell: effect at the last generation against the baseline of the same run and seed '
            "(%, mean over seeds) with its 95% interval; bold green or red where the interval excludes 0. "
            f"{escape(tiers.RULE)} A mitigation that adds human documents to the mixes buys health with human data, so "
            f'its budget is shown and it is tiered after those within budget.</p>'
            f'{"".join(render_track(subs, n, page_id) for n in TRACKS.names())}</section>')
