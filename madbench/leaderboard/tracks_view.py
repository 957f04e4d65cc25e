"""The leaderboard's track tables: each track's mitigations ranked against the track's baseline.

    madbench leaderboard build        # index.html: one ranked table per track, then the open submissions

Rows come from :func:`madbench.config.tracks.rank` over every submission of the track (each
carries its own baseline chains, so an effect is always measured against the
baseline of the same run): effect on the track's metric at the last generation (%),
its 95% seed interval beside the baseline's, whether the two separate, and the share of
human documents the mitigation put into the training mixes. Mitigations within the
track's human-data budget rank first; those over it are ranked after them, marked.
"""

from __future__ import annotations

from html import escape

from madbench.config.tracks import TRACKS, rank
from madbench.leaderboard.svg import fmt


def _pct(v) -> str:
    return '<span class="na">—</span>' if v is None else f"{v:+.1f}%"


def _interval(ci) -> str:
    lo, hi = ci
    return '<span class="na">—</span>' if lo is None or hi is None else f"[{lo:+.1f}, {hi:+.1f}]"


def track_rows(subs: list[dict], name: str) -> list[dict]:
    """Ranked rows of one track over all its submissions, each with the submission it came from."""
    tr = TRACKS.get(name)
    out = []
    for data in subs:
        if data.get("track") == name:
            out.extend({**row, "sub": data} for row in rank(data, tr))
    from madbench.metrics import metric_info

    sign = -1 if metric_info(tr.metric)["higher_is_better"] else 1  # best effect first
    out.sort(key=lambda r: (not r["within_budget"], r["effect_pct"] is None, sign * (r["effect_pct"] or 0.0)))
    for i, r in enumerate(out, 1):
        r["rank"] = i
    return out


def render_track(subs: list[dict], name: str, page_id) -> str:
    tr = TRACKS.get(name)
    cfg = tr.config()
    protocol = (f"model {cfg.model.name}, corpus {cfg.data.corpus}, regime {', '.join(cfg.loop.regimes)}, "
                f"{len(cfg.loop.seeds)} seeds, {cfg.loop.generations} generations, {cfg.sampling.num_samples} samples/generation")
    rows = track_rows(subs, name)
    head = ("<tr><th>#</th><th>Mitigation</th><th>Submission</th><th title=\"last generation vs the same run's baseline; "
            f"lower is better\">{escape(tr.metric)} vs baseline ↓</th><th>95% interval</th><th>baseline interval</th>"
            "<th>separated</th><th title=\"mean share of human documents in the training mixes after generation 0\">"
            "human data in mixes</th><th>budget</th></tr>")
    body = []
    for r in rows:
        sub = r["sub"]
        budget = "within" if r["within_budget"] else f'<span class="over">over ({fmt(100 * r["added_human_share"])}%)</span>'
        body.append(
            f'<tr class="{"" if r["within_budget"] else "over-budget"}" data-mitigation="{escape(r["mitigation"])}">'
            f'<td class="num">{r["rank"]}</td><td>{escape(r["mitigation"])}</td>'
            f'<td><a href="s/{page_id(sub)}.html">{escape(sub["run"]["name"])}</a>'
            f'<div class="who">{escape(sub["submitter"]) or "anonymous"}</div></td>'
            f'<td class="num effect">{_pct(r["effect_pct"])}</td><td class="num">{_interval(r["ci95_pct"])}</td>'
            f'<td class="num">{_interval(r["baseline_ci95_pct"])}</td><td>{"yes" if r["separated"] else "no"}</td>'
            f'<td class="num">{fmt(100 * r["human_share"])}%</td><td>{budget}</td></tr>')
    if not body:
        body.append(f'<tr><td colspan="9" class="muted">no submissions yet: madbench run --track {escape(name)} '
                    f"'loop.mitigations=[yours]' then madbench submit runs/track-{escape(name)}</td></tr>")
    return (f'<div class="card track" id="track-{escape(name)}" data-track="{escape(name)}"><h3>Track {escape(name)}</h3>'
            f'<p class="muted">{escape(tr.description)}. Protocol: {escape(protocol)}. Human-data budget: '
            f'{fmt(100 * tr.human_budget)}% of the mixes (mitigations over it rank after those within).</p>'
            f'<div class="table-wrap"><table class="plain track-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
            "</table></div></div>")


def render_tracks(subs: list[dict], page_id) -> str:
    return ('<section id="tracks"><h2>Tracks: mitigations ranked under one frozen protocol</h2>'
            '<p class="muted">Effect at the last generation against the baseline of the same run; intervals are 95% over '
            "seeds; a mitigation that adds human documents to the mixes buys health with human data, so its budget is "
            f'shown and ranked.</p>{"".join(render_track(subs, n, page_id) for n in TRACKS.names())}</section>')
