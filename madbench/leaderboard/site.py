"""Render validated submissions as a static site that works from file:// with no network.

    madbench leaderboard build --out leaderboard/site
    python -c "from madbench.leaderboard.site import build; build(...)"

index.html (what works, the tiered track tables, then the open submissions' sortable, filterable
table), curves.html (small multiples per model and regime, curves_view.py), t/TRACK.html (a track's
table and curves), help.html (score definitions from scores.py) and one page per submission under s/. Every string
from a submission goes through ``html.escape``; file names come from content
hashes only; a Content-Security-Policy allows only the site's own script.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

from madbench.results import fileio
from madbench.errors import MadbenchError
from madbench.leaderboard import curves_view
from madbench.leaderboard import scores as scores_mod
from madbench.leaderboard.external import declared as plugin_names
from madbench.leaderboard.external import is_external
from madbench.leaderboard.svg import fmt, line_chart

EXTERNAL = ' <span class="external" title="a plug-in, not part of madbench: see its declaration on the submission page">external</span>'


def page_id(data: dict) -> str:
    return data["content_hash"][7:23]  # hex only: safe as a file name


def _asset(name: str) -> str:
    return resources.files("madbench.leaderboard").joinpath("assets", name).read_text(encoding="utf-8")


def _page(title: str, body: str, root: str, count: int, built: str) -> str:
    return Template(_asset("page.html")).substitute(title=escape(title), body=body, root=root, count=count, built=built)


def _mitigation_label(mitigations) -> str:
    return "+".join(mitigations) if mitigations else "none"


def _cell(summary: dict, unit: str) -> tuple[str, str]:
    """(data-sort value, HTML text) of one score cell."""
    mean = summary.get("mean")
    if mean is None:
        return "", '<span class="na">—</span>'
    text = fmt(mean) + ("%" if unit == "%" else "")
    if (summary.get("n") or 0) > 1 and summary.get("ci95_high") is not None:
        text += f' <span class="ci">± {fmt(summary["ci95_high"] - mean)}</span>'
    return repr(float(mean)), text


def rows(subs: list[dict]) -> list[dict]:
    """One row per (submission, chain group): what the main table shows."""
    out = []
    for data in subs:
        for group in data["scores"]["groups"]:
            out.append({"sub": data, "group": group, "model": data["summary"]["model"], "corpus": data["summary"]["corpus"],
                        "regime": f"{group['regime']}/{group['mode']}", "mitigation": _mitigation_label(group["mitigations"])})
    return out


def _options(name: str, label: str, values) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in sorted(set(values)))
    return (f'<label>{label} <select class="facet" data-facet="{name}"><option value="">all</option>{opts}</select></label>')


def render_table(table_rows: list[dict]) -> str:
    defs = scores_mod.definitions()
    head = ['<th data-type="text">Submission</th>', '<th data-type="text">Model</th>', '<th data-type="text">Corpus</th>',
            '<th data-type="text">Regime</th>', '<th data-type="text">Mitigation</th>', '<th data-type="num">Seeds</th>',
            '<th data-type="num">Gens</th>']
    for d in defs:
        arrow = "↑" if d["higher_is_better"] else "↓"
        better = "higher is better" if d["higher_is_better"] else "lower is better"
        head.append(f'<th data-type="num" data-score="{d["name"]}" data-higher-is-better="{str(d["higher_is_better"]).lower()}" '
                    f'title="{escape(d["description"])} ({better})">{escape(d["label"])} <span class="dir">{arrow}</span></th>')
    body = []
    for r in table_rows:
        sub, group = r["sub"], r["group"]
        who = escape(sub["submitter"]) if sub["submitter"] else '<span class="na">anonymous</span>'
        cells = [f'<td data-sort="{escape(sub["run"]["name"].lower())}"><a href="s/{page_id(sub)}.html">{escape(sub["run"]["name"])}</a>'
                 f'<div class="who">{who}</div></td>',
                 f'<td class="clip" title="{escape(r["model"])}">{escape(r["model"])}</td>',
                 f'<td class="clip" title="{escape(r["corpus"])}">{escape(r["corpus"])}</td>',
                 f'<td><span class="pill">{escape(r["regime"])}</span></td>',
                 f'<td>{escape(r["mitigation"])}{EXTERNAL if is_external(sub, group["mitigations"]) else ""}</td>',
                 f'<td data-sort="{len(group["seeds"])}">{len(group["seeds"])}</td>',
                 f'<td data-sort="{group["last_generation"] or 0}">{group["last_generation"]}</td>']
        for d in defs:
            sort, text = _cell(group["scores"][d["name"]], d["unit"])
            cells.append(f'<td class="num" data-sort="{sort}">{text}</td>')
        attrs = " ".join(f'data-{k}="{escape(r[k])}"' for k in ("model", "corpus", "regime", "mitigation"))
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return (f'<table id="board" class="board"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def render_index(subs: list[dict]) -> str:
    from madbench.leaderboard import protocols_view
    from madbench.leaderboard.tracks_view import render_tracks, what_works

    table_rows = rows([s for s in subs if "track" not in s])  # open submissions; tracked ones are ranked per track
    facets = "".join([_options("model", "Model", [r["model"] for r in table_rows]),
                      _options("regime", "Regime", [r["regime"] for r in table_rows]),
                      _options("mitigation", "Mitigation", [r["mitigation"] for r in table_rows]),
                      _options("corpus", "Corpus", [r["corpus"] for r in table_rows])])
    return (
        '<section class="intro"><h1>Model autophagy leaderboard</h1>'
        '<p>How fast does a small language model degrade when it is fine-tuned, generation after generation, on its own '
        'samples, and which mitigations keep it healthy? <b>What works</b>, per track (one frozen protocol, every '
        'mitigation against the baseline of its own run):</p>'
        f'{what_works(subs)}'
        f'<div class="stats"><div><b>{len(subs)}</b> submissions</div>'
        f'<div><b>{len([s for s in subs if "track" in s])}</b> on tracks</div><div><b>{len(table_rows)}</b> open rows</div>'
        f'<div><b>{len({s["summary"]["model"] for s in subs})}</b> models</div></div>'
        '<p class="muted">Curves of every submission, one card per model and regime: <a href="curves.html">curves</a>. '
        'Definitions: <a href="help.html">scores &amp; help</a>.</p>'
        f'{protocols_view.render_index_links()}</section>'
        f'{render_tracks(subs, page_id)}'
        '<section id="board-section" class="card"><h2>Open submissions</h2><p class="muted">Runs that follow no track: '
        'each row is one regime and mitigation set; compare rows only under the same protocol (model, corpus, regime).</p>'
        '<div class="filters">'
        '<input id="filter" type="search" placeholder="Filter rows (any text)…" aria-label="filter rows">'
        f'{facets}<span id="shown" class="shown"></span></div>'
        f'<div class="table-wrap">{render_table(table_rows)}</div></section>'
    )


def render_track_page(subs: list[dict], name: str) -> str:
    """One track: its tiered table, then the curves of its submissions (a track has one model and regime)."""
    from madbench.leaderboard.tracks_view import render_track

    mine = [s for s in subs if s.get("track") == name]
    return (f'<p class="crumbs"><a href="../index.html">← leaderboard</a></p><h1>Track {escape(name)}</h1>'
            f'{render_track(subs, name, page_id, root="../", link=False)}'
            '<section id="curves"><h2>Metric vs generation</h2><p class="muted">Mean over seeds with the 95% band; '
            f'the numbers are in the table under each chart.</p><div class="curve-grid">{curves_view.render_grid(mine)}'
            '</div></section>')


def _dl(items: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _processors(env: dict) -> str:
    """The CPU kind that computed the run; every kind, marked, when a resume continued it on another
    (``environment.computed_on``, madbench/run.py:computed_on)."""
    proc = env.get("processor")
    kinds = [str(n.get("processor")) for n in env.get("computed_on") or [] if isinstance(n, dict)]
    if len(kinds) > 1:
        return escape(" then ".join(kinds)) + ' <span class="na">(resumed on another kind of machine)</span>'
    return escape(str(proc.get("kind") if isinstance(proc, dict) else "unknown"))


def _parts(parts: list) -> str:
    """A merged submission's parts (``environment.parts``, madbench/leaderboard/merge.py): which seeds ran where."""
    def one(p: dict) -> str:
        git = p.get("git") or {}
        commit = str(git.get("commit"))[:12] + (" (dirty)" if git.get("dirty") else "")
        return (f'seeds {escape(", ".join(map(str, p.get("seeds") or [])))} at <code>{escape(commit)}</code>, '
                f'{escape(str(p.get("date")))}')
    return "; ".join(one(p) for p in parts if isinstance(p, dict))


def render_submission(data: dict) -> str:
    s, env = data["summary"], data["environment"]
    git = env.get("git") or {}
    facts = _dl([
        ("Submitter", escape(data["submitter"]) or '<span class="na">anonymous</span>'),
        ("Created", escape(data["created"])), ("Model", escape(s["model"])), ("Corpus", escape(s["corpus"])),
        ("Regimes", escape(", ".join(s["regimes"]))),
        ("Mitigation sets", escape("; ".join(_mitigation_label(m) for m in s["mitigations"]))),
        ("Seeds", escape(", ".join(map(str, s["seeds"])))), ("Generations", str(s["generations"])),
        ("Sampling", escape(", ".join(f"{k}={v}" for k, v in s["sampling"].items()))),
        ("Config hash", f'<code>{escape(data["run"]["config_hash"])}</code>'),
        ("Git commit", f'<code>{escape(str(git.get("commit")))}</code>' + (" (dirty)" if git.get("dirty") else "")),
        *([("Merged from", _parts(env["parts"]))] if env.get("parts") else []),
        ("Device", escape(str(env.get("device")))), ("Processor", _processors(env)), ("Complete", "yes" if data["run"]["complete"] else "no"),
        ("Content hash", f'<code class="hash">{escape(data["content_hash"])}</code>'),
    ])
    notes = f'<h2>Notes</h2><p class="notes">{escape(data["notes"])}</p>' if data["notes"] else ""
    notes += render_plugins(data)
    defs = scores_mod.definitions()
    head = "".join(f'<th title="{escape(d["description"])}">{escape(d["label"])} {"↑" if d["higher_is_better"] else "↓"}</th>' for d in defs)
    srows = "".join(f'<tr><td>{escape(g["label"])}</td>' + "".join(f'<td class="num">{_cell(g["scores"][d["name"]], d["unit"])[1]}</td>' for d in defs)
                    + "</tr>" for g in data["scores"]["groups"])
    metrics = sorted({k for c in data["chains"] for g in c["generations"] for k in g["metrics"]})
    charts = "".join(line_chart([{"label": c["id"], "points": [p for p in scores_mod.series(c, m)]} for c in data["chains"]],
                                title=m, width=400, height=250) for m in metrics)
    tables = []
    for c in data["chains"]:
        th = "".join(f"<th>{escape(m)}</th>" for m in metrics)
        trs = "".join(f'<tr><td>{g["generation"]}</td>' + "".join(
            f'<td class="num">{_num(g["metrics"].get(m))}</td>' for m in metrics)
            + f'<td class="num">{_num(g.get("synthetic_fraction"))}</td><td class="num">{_num(g.get("train_tokens"))}</td></tr>'
            for g in c["generations"])
        tables.append(f'<h3>{escape(c["id"])} <span class="muted">seed {escape(str(c["seed"]))}</span></h3>'
                      f'<div class="table-wrap"><table class="plain"><thead><tr><th>gen</th>{th}<th>synthetic</th>'
                      f'<th>train tokens</th></tr></thead><tbody>{trs}</tbody></table></div>')
    versions = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in (env.get("versions") or {}).items())
    return (
        f'<p class="crumbs"><a href="../index.html">← leaderboard</a></p><h1>{escape(data["run"]["name"])} '
        f'<span class="muted">· {escape(s["model"])}</span></h1>'
        f'<section class="card">{facts}{notes}</section>'
        f'<section class="card"><h2>Summary scores</h2><div class="table-wrap"><table class="plain"><thead><tr><th>group</th>{head}</tr>'
        f'</thead><tbody>{srows}</tbody></table></div></section>'
        f'<section class="card"><h2>Curves</h2><div class="charts">{charts}</div></section>'
        f'<section class="card"><h2>Per-generation metrics</h2>{"".join(tables)}</section>'
        f'<section class="card"><h2>Environment</h2><table class="plain"><tbody>{versions}</tbody></table></section>'
        f'<section class="card"><h2>Full config</h2><pre class="config">{escape(json.dumps(data["config"], indent=2))}</pre>'
        f'<p><a href="../data/{page_id(data)}.json">raw submission JSON</a></p></section>'
    )


def render_plugins(data: dict) -> str:
    """The submission's plug-in declarations: what is external, where to get it, the hash of the code that ran."""
    decl = [p for kind in ("mitigation", "regime", "metric") for p in plugin_names(data, kind).values()]
    if not decl:
        return ""
    rows = "".join(
        f'<tr><td>{escape(p["kind"])}</td><td><code>{escape(p["name"])}</code>{EXTERNAL}</td>'
        f'<td>{escape(p["distribution"])} {escape(p["version"])}</td>'
        f'<td><a href="{escape(p["url"])}" rel="nofollow noopener">{escape(p["url"])}</a></td>'
        f'<td><code class="hash">{escape(p["sha256"])}</code></td><td>{escape(str(p.get("target_metric") or "—"))}</td></tr>'
        for p in decl)
    return ('<h2>External plug-ins</h2><p class="muted">Not part of madbench: install the code from where it says and '
            'check its sha256 before reproducing the run (a checksum, not a signature).</p><div class="table-wrap">'
            '<table class="plain plugins"><thead><tr><th>kind</th><th>name</th><th>distribution</th><th>where to get it</th>'
            f'<th>sha256 of its code</th><th>target metric</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _num(value) -> str:
    if value is None:
        return '<span class="na">—</span>'
    return escape(fmt(value) if isinstance(value, float) else str(value))


def render_help() -> str:
    from madbench.metrics import METRICS
    from madbench.loop.regimes import REGIMES

    sc = "".join(f'<tr><td><code>{d["name"]}</code></td><td>{escape(d["label"])}</td>'
                 f'<td>{"higher ↑" if d["higher_is_better"] else "lower ↓"}</td><td>{escape(d["description"])}</td></tr>'
                 for d in scores_mod.definitions())
    reg = "".join(f"<tr><td><code>{escape(n)}</code></td><td>{escape((f.__doc__ or '').strip())}</td></tr>" for n, f in REGIMES.items())
    direction = {True: "higher ↑", False: "lower ↓"}
    met = "".join(f'<tr><td><code>{escape(s.name)}</code></td><td>{direction.get(s.higher_is_better, "—")}</td>'
                  f'<td>{escape(s.description)}</td></tr>' for s in METRICS.specs())
    return (
        '<h1>Scores &amp; help</h1><section class="card"><h2>Summary scores</h2>'
        '<p>Computed per chain from its per-generation metrics (<code>madbench/leaderboard/scores.py</code>), then averaged '
        'over seeds; with several seeds a cell shows the mean ± the half-width of the 95% Student-t interval '
        f'(<code>madbench/reporting/stats.py</code>). Relative degradation at generation g, in %: 100·(m<sub>g</sub>−m<sub>0</sub>)/|m<sub>0</sub>| '
        'for a lower-is-better metric, the negative of that for a higher-is-better one.</p>'
        f'<table class="plain"><thead><tr><th>key</th><th>column</th><th>better</th><th>definition</th></tr></thead><tbody>{sc}</tbody></table></section>'
        f'<section class="card"><h2>Regimes</h2><table class="plain"><tbody>{reg}</tbody></table>'
        '<p>Each takes <code>/replace</code> (only the last generation\'s samples) or <code>/accumulate</code> (all so far).</p></section>'
        f'<section class="card"><h2>Metrics</h2><table class="plain"><tbody>{met}</tbody></table></section>'
        '<section class="card"><h2>Submitting</h2><pre class="config">madbench run --config my.yaml --output-dir runs/mine\n'
        'madbench submit runs/mine --submitter "Your name" --notes "what is special"\n'
        'madbench leaderboard validate\nmadbench leaderboard build   # then open leaderboard/site/index.html</pre>'
        '<p>To be ranked in a track, run its frozen protocol with your mitigation (the baseline runs beside it), then submit: '
        '<code>madbench run --track tiny-fs \'loop.mitigations=[yours]\'</code>, <code>madbench submit runs/track-tiny-fs</code> '
        '(<code>madbench list tracks</code>). Anything else is an open submission.</p>'
        '<p>Then add the file as <code>leaderboard/submissions/FILE</code> in a fork of the madbench repository and open a pull '
        'request against <code>main</code> (<code>madbench submit</code> prints these steps); the repository\'s '
        '<code>.github/workflows/leaderboard.yml</code> validates every submission and builds this site on it. A run made '
        'with a plug-in declares it (<code>--plugin-url</code>) and validates without it; it is marked external.</p></section>'
    )


def build(subs: list[dict], out: Path) -> Path:
    """Write the site for already-validated submissions into ``out`` (replaced); return index.html.

    The site is rendered into a temporary sibling folder and swapped in only when complete:
    a build that fails half-way leaves the previous site as it was.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MadbenchError(f"{out} is a file, not a folder; --out names the folder the site is written to "
                            "(nothing was changed)")
    if out.exists():
        if out.is_dir() and any(out.iterdir()) and not (out / "assets" / "leaderboard.js").is_file():
            raise MadbenchError(f"{out} is not empty and is not a leaderboard site; pick an empty or new folder for --out")
    tmp = fileio.atomic_dir(out)
    try:
        _render_into(subs, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.is_dir():  # swap: move the old site aside, the new one in, then drop the old one
        old = out.parent / f".{out.name}.old-{tmp.name.split('.')[-2]}"
        os.replace(out, old)
    elif out.exists():
        out.unlink()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out / "index.html"


def _render_into(subs: list[dict], out: Path) -> None:
    built = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n = len(subs)
    fileio.atomic_write_text(out / "index.html", _page("Leaderboard", render_index(subs), "", n, built))
    fileio.atomic_write_text(out / "help.html", _page("Scores & help", render_help(), "", n, built))
    fileio.atomic_write_text(out / "curves.html", _page("Curves", curves_view.render_page(subs), "", n, built))
    from madbench.config.tracks import TRACKS

    for name in TRACKS.names():
        fileio.atomic_write_text(out / "t" / f"{name}.html", _page(f"Track {name}", render_track_page(subs, name), "../", n, built))
    from madbench.config.protocols import PROTOCOLS
    from madbench.leaderboard import protocols_view

    for name in PROTOCOLS:
        fileio.atomic_write_text(out / "p" / f"{name}.html",
                                 _page(f"Protocol {name}", protocols_view.render_page(subs, name, page_id), "../", n, built))
    for data in subs:
        fileio.atomic_write_text(out / "s" / f"{page_id(data)}.html",
                             _page(data["run"]["name"], render_submission(data), "../", n, built))
        fileio.write_json(out / "data" / f"{page_id(data)}.json", data)
    for name in ("style.css", "leaderboard.js"):
        fileio.atomic_write_text(out / "assets" / name, _asset(name))
