"""Protocol pages: one per published protocol, fed by ordinary submissions of runs made with its preset.

    madbench run --preset gerstgrasser2024 && madbench submit runs/gerstgrasser2024   # carries results.json's protocol block
    madbench leaderboard build                                                        # -> p/gerstgrasser2024.html

A run made with a protocol preset records the protocol and every fixed key it overrides
(:mod:`madbench.config.protocols`); its submission carries that block, and ``validate`` recomputes the
deviations from the submission's own config (a file cannot hide one). A page shows the paper's claim,
the command, the keys the protocol fixes, the submissions (a deviating one marked, with the keys), their
curves with seed bands, and the verdict, judged on the faithful submissions only: for each claimed
ordering of regimes, the perplexity increase (last generation vs generation 0, per chain) of the regime
claimed to degrade more against the other's, with 95% seed intervals: "reproduced" when they separate in
the claimed direction, "direction only" when the means are ordered but the intervals overlap, "not
reproduced" when reversed.

A verdict is one per model and per *arm*: faithful submissions whose sampling settings differ (mad2024's
biased and unbiased sweep) are judged apart, never pooled. Where every chain has its partner (the other
regime, same submission, same seed) the verdict is paired: the 95% t-interval of the per-seed difference
must exclude 0; otherwise the two groups are compared unpaired (:func:`madbench.reporting.stats.compare`).
"""

from __future__ import annotations

import json
from html import escape
from typing import List, Optional

from madbench.leaderboard.bundle import Invalid
from madbench.leaderboard.svg import fmt

# the paper's claim and the orderings madbench checks: (regime claimed to degrade more, regime claimed to degrade less)
CLAIMS = {
    "shumailov2024": ("Training on recursively generated data makes the model degrade (perplexity on real text rises); "
                      "keeping 10% of the original data slows it.",
                      [("fully_synthetic/replace", "synthetic_augmentation/replace")], "madbench run --preset shumailov2024"),
    "gerstgrasser2024": ("Replacing the data with each generation's samples collapses; accumulating real and synthetic "
                         "data avoids it.",
                         [("fully_synthetic/replace", "synthetic_augmentation/accumulate")],
                         "madbench run --preset gerstgrasser2024"),
    "mad2024": ("A fully synthetic loop goes MAD; enough fresh real data each generation keeps quality.",
                [("fully_synthetic/replace", "fresh_data/replace")], "madbench sweep --config sweeps/mad2024.yaml"),
    "drayson2025": ("The decoding strategy sets the pace of collapse; low-entropy decoding (greedy, beam) degrades "
                    "fastest.", [], "madbench sweep --config sweeps/drayson2025.yaml"),
}


def recompute(data: dict) -> Optional[list]:
    """The deviations of a submission's config from its declared protocol (as madbench run records them)."""
    from madbench.config.protocols import PROTOCOLS
    from madbench.config.run_config import to_plain

    p = PROTOCOLS[data["protocol"]["protocol"]]
    wanted, out = to_plain(p["values"]), []
    for key in p["fixed"]:
        expected, actual = _get(wanted, key), _get(data["config"], key)
        if expected != actual:
            out.append({"key": key, "protocol": expected, "run": actual})
    return out


def _get(node, dotted: str):
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def check(data: dict) -> None:
    """A declared protocol must be a published one, and its deviations must be the config's own."""
    if "protocol" not in data:
        return
    from madbench.config.protocols import PROTOCOLS
    from madbench.registry import did_you_mean

    block = data["protocol"]
    name = block.get("protocol")
    if name not in PROTOCOLS:
        raise Invalid("protocol/protocol", f"unknown protocol {str(name)[:40]!r};{did_you_mean(str(name), list(PROTOCOLS))} "
                                           f"known: {', '.join(PROTOCOLS)}")
    want = recompute(data)
    if block.get("deviations") != want:
        keys = ", ".join(d["key"] for d in want) or "none"
        raise Invalid("protocol/deviations", f"do not match the config (it deviates from {name} at: {keys}); "
                                             "re-run madbench submit")


def deviation_text(data: dict) -> str:
    return ", ".join(f"{d['key']}={json.dumps(d['run'])} (protocol: {json.dumps(d['protocol'])})"
                     for d in data["protocol"]["deviations"])


def verdict(subs: List[dict], worse: str, better: str) -> dict:
    """Pool the faithful submissions' chains (one model, one arm); compare the two regimes' perplexity increase,
    paired by (submission, seed) when every chain has its partner."""
    from madbench.leaderboard.scores import ppl_increase_pct
    from madbench.reporting.stats import compare, seed_summary

    values = {worse: {}, better: {}}
    for i, data in enumerate(subs):
        for c in data["chains"]:
            label = f"{c['regime']}/{c['mode']}"
            if label in values and not c["mitigations"]:
                v = ppl_increase_pct(c, {})
                if v is not None:
                    values[label][(i, c["seed"])] = v
    cmp = compare(list(values[better].values()), list(values[worse].values()), False)
    if cmp["diff"] is None:
        return {"verdict": "no data", "cmp": cmp, "paired": None}
    paired = None
    if set(values[worse]) == set(values[better]) and len(values[worse]) >= 2:
        diffs = [values[worse][k] - values[better][k] for k in values[worse]]
        paired = seed_summary(diffs)
        paired["worse_in"] = sum(d > 0 for d in diffs)
        ordered, separated = paired["mean"] > 0, paired["ci95_low"] > 0 or paired["ci95_high"] < 0
    else:
        ordered, separated = cmp["diff"] > 0, cmp["separated"]
    if ordered:
        word = "reproduced" if separated else "direction only (intervals overlap)"
    else:
        word = "not reproduced" + ("" if separated else " (intervals overlap)")
    return {"verdict": word, "cmp": cmp, "paired": paired}


ARM_BLOCKS = ("sampling",)  # a protocol's sweep arms vary these; its verdict is judged per arm


def arms(subs: List[dict]) -> dict:
    """Group submissions by the settings of ``ARM_BLOCKS`` that differ between them: {label: [submissions]};
    one group labelled "" when they all agree."""
    from madbench.config.dotted import flatten

    flat = [{f"{b}.{k}": v for b in ARM_BLOCKS for k, v in flatten(d["config"].get(b) or {}).items()} for d in subs]
    varying = sorted({k for f in flat for k in f if len({json.dumps(g.get(k), sort_keys=True) for g in flat}) > 1})
    out: dict = {}
    for d, f in zip(subs, flat):
        label = ", ".join(f"{k.split('.', 1)[1]}={json.dumps(f.get(k))}" for k in varying)
        out.setdefault(label, []).append(d)
    return out


def _summary(s: dict) -> str:
    if s["mean"] is None:
        return "—"
    ci = f" [{fmt(s['ci95_low'])}, {fmt(s['ci95_high'])}]" if s["n"] > 1 else ""
    return f"{fmt(s['mean'])}%{ci}, {s['n']} chain{'s' * (s['n'] != 1)}"


def _paired(p: Optional[dict]) -> str:
    if not p:
        return ""
    return (f"; paired by seed: {fmt(p['mean'])} points [{fmt(p['ci95_low'])}, {fmt(p['ci95_high'])}], "
            f"worse in {p['worse_in']} of {p['n']}")


def render_page(subs: List[dict], name: str, page_id) -> str:
    from madbench.config.protocols import PROTOCOLS
    from madbench.leaderboard import curves_view

    p, (claim, orderings, command) = PROTOCOLS[name], CLAIMS[name]
    mine = [d for d in subs if (d.get("protocol") or {}).get("protocol") == name]
    faithful = [d for d in mine if not d["protocol"]["deviations"]]
    rows = "".join(
        f'<tr class="{"deviates" if d["protocol"]["deviations"] else "faithful"}"><td><a href="../s/{page_id(d)}.html">'
        f'{escape(d["run"]["name"])}</a><div class="who">{escape(d["submitter"]) or "anonymous"}</div></td>'
        f'<td>{escape(d["summary"]["model"])}</td><td>{len(d["summary"]["seeds"])}</td><td>{d["summary"]["generations"]}</td>'
        f'<td>{"follows the protocol" if not d["protocol"]["deviations"] else "<span class=over>deviates</span>: " + escape(deviation_text(d))}'
        "</td></tr>" for d in mine) or '<tr><td colspan="5" class="muted">no submissions yet</td></tr>'
    verdicts = []
    for worse, better in orderings:
        models = sorted({d["summary"]["model"] for d in faithful})
        for model in models or [None]:
            for arm, group in sorted(arms([d for d in faithful if d["summary"]["model"] == model]).items()) or [("", [])]:
                v = verdict(group, worse, better)
                where = (" on " + escape(model) if model else "") + (f" ({escape(arm)})" if arm else "")
                verdicts.append(f'<li data-verdict="{escape(v["verdict"])}"><b>{escape(v["verdict"])}</b>{where}: '
                                f'perplexity increase of {escape(worse)} {_summary(v["cmp"]["b"])} vs {escape(better)} '
                                f'{_summary(v["cmp"]["a"])}{_paired(v["paired"])}</li>')
    if not orderings:
        verdicts.append("<li>judged across decoding settings, one run each: read the curves (not computed here)</li>")
    fixed = "".join(f"<tr><td><code>{escape(k)}</code></td><td><code>{escape(json.dumps(_get(_plain(p['values']), k)))}</code>"
                    "</td></tr>" for k in p["fixed"])
    return (f'<p class="crumbs"><a href="../index.html">← leaderboard</a></p><h1>Protocol {escape(name)}</h1>'
            f'<section class="card"><p><b>Paper.</b> {escape(p["paper"])}</p><p><b>Claim.</b> {escape(claim)}</p>'
            f'<p><b>Verdict</b> (faithful submissions only, per model and sampling arm; perplexity increase last vs '
            'generation 0, 95% seed intervals, paired by seed where every chain has its partner):</p>'
            f'<ul class="verdicts">{"".join(verdicts)}</ul>'
            f'<p><b>Command.</b> <code>{escape(command)}</code> then <code>madbench submit RUN</code>. Card: '
            f'<code>docs/protocols/{escape(name)}.md</code>.</p></section>'
            f'<section class="card"><h2>Exact config: what the protocol fixes</h2><p class="muted">{escape(p["description"])}. '
            'A run that overrides one of these keys is marked as deviating and left out of the verdict.</p>'
            f'<table class="plain"><tbody>{fixed}</tbody></table></section>'
            '<section class="card"><h2>Submissions</h2><div class="table-wrap"><table class="plain protocol-subs"><thead><tr>'
            f'<th>run</th><th>model</th><th>seeds</th><th>gens</th><th>protocol</th></tr></thead><tbody>{rows}</tbody>'
            '</table></div></section>'
            f'<section id="curves"><h2>Curves</h2><div class="curve-grid">{curves_view.render_grid(mine)}</div></section>')


def _plain(values):
    from madbench.config.run_config import to_plain

    return to_plain(values)


def render_index_links() -> str:
    from madbench.config.protocols import PROTOCOLS

    return ('<p class="muted" id="protocols">Published protocols reproduced (claim, verdict, curves, command): '
            + ", ".join(f'<a href="p/{escape(n)}.html">{escape(n)}</a>' for n in PROTOCOLS) + ".</p>")
