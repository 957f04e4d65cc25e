"""Protocol pages: fed by ordinary submissions of a protocol preset's runs; a deviating one is marked, a hidden one refused.

    .venv/bin/python -m pytest -q tests/test_leaderboard_protocols.py
"""

from __future__ import annotations

import json
import re

from conftest import ROOT

from madbench.leaderboard import bundle, site
from madbench.leaderboard.protocols_view import recompute
from madbench.leaderboard.validate import check_file

SHIPPED = ROOT / "leaderboard" / "submissions" / "smoke-tiny-761528f493e4.json"  # regimes fully_synthetic, augmentation, fresh


def declared(protocol: str, deviations=None, run="smoke") -> dict:
    data = json.loads(SHIPPED.read_text())
    data["run"]["name"] = run
    data["protocol"] = {"protocol": protocol, "deviations": []}
    data["protocol"]["deviations"] = recompute(data) if deviations is None else deviations
    data["content_hash"] = bundle.content_hash(data)
    return data


def test_a_protocol_page_shows_claim_verdict_command_and_marks_a_deviating_run(tmp_path):
    faithful = declared("mad2024")  # mad2024 fixes loop.regimes only: the smoke run follows it
    deviating = declared("mad2024", run="<b>bold</b>")
    deviating["config"]["loop"]["regimes"] = ["fully_synthetic", "fresh_data"]
    deviating["chains"] = [c for c in deviating["chains"] if c["regime"] != "synthetic_augmentation"]
    deviating["summary"] = bundle.summary(deviating["config"], deviating["chains"])
    from madbench.leaderboard import scores

    deviating["scores"] = scores.scores_block(deviating["chains"], deviating["metrics_info"])
    deviating["protocol"]["deviations"] = recompute(deviating)
    deviating["content_hash"] = bundle.content_hash(deviating)
    assert faithful["protocol"]["deviations"] == [] and [d["key"] for d in deviating["protocol"]["deviations"]] == ["loop.regimes"]
    for name, data in (("f.json", faithful), ("d.json", deviating)):
        (tmp_path / name).write_text(json.dumps(data))
        assert check_file(tmp_path / name).ok, check_file(tmp_path / name).line()
    site.build([faithful, deviating], tmp_path / "site")
    page = (tmp_path / "site" / "p" / "mad2024.html").read_text()
    assert "Claim." in page and "madbench sweep --config sweeps/mad2024.yaml" in page and "<code>loop.regimes</code>" in page
    rows = re.findall(r'<tr class="(faithful|deviates)">', page)
    assert sorted(rows) == ["deviates", "faithful"]
    assert "deviates</span>: loop.regimes=" in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    (verdict,) = re.findall(r'<li data-verdict="([^"]+)">', page)  # judged on the faithful run only (1 seed)
    g0 = {c["regime"]: c["generations"] for c in faithful["chains"]}
    rises = lambda r: g0[r][-1]["metrics"]["perplexity"] / g0[r][0]["metrics"]["perplexity"]  # noqa: E731
    assert verdict.startswith("direction only" if rises("fully_synthetic") > rises("fresh_data") else "not reproduced")
    assert 'href="p/mad2024.html"' in (tmp_path / "site" / "index.html").read_text()
    assert "no submissions yet" in (tmp_path / "site" / "p" / "shumailov2024.html").read_text()


def test_a_hidden_deviation_or_an_unknown_protocol_is_one_line(tmp_path):
    hidden = declared("shumailov2024", deviations=[])  # the smoke config departs from it at many fixed keys
    typo = declared("mad2024")
    typo["protocol"]["protocol"] = "mad2025"
    typo["content_hash"] = bundle.content_hash(typo)
    cases = [(hidden, "protocol/deviations", "it deviates from shumailov2024 at: train.method"),
             (typo, "protocol/protocol", "unknown protocol 'mad2025'; did you mean 'mad2024'?")]
    for data, field, message in cases:
        (tmp_path / "x.json").write_text(json.dumps(data))
        item = check_file(tmp_path / "x.json")
        assert not item.ok and item.error.field == field and message in item.error.message, item.line()


def test_mad2024_verdicts_are_per_sampling_arm_and_paired_by_seed(tmp_path):
    """The shipped 8-seed tiny-model mad2024 sweep (biased and unbiased sampling) gives two verdicts, never one pooled one."""
    subs = [json.loads(f.read_text()) for f in sorted((ROOT / "leaderboard" / "submissions").glob("mad2024.*-tiny-*.json"))]
    assert len(subs) == 2 and all(not d["protocol"]["deviations"] for d in subs)
    site.build(subs, tmp_path / "site")
    page = (tmp_path / "site" / "p" / "mad2024.html").read_text()
    items = re.findall(r'<li data-verdict="([^"]+)"><b>[^<]*</b>([^<]*)</li>', page)
    assert len(items) == 2, items
    for data in subs:  # the per-seed difference of the perplexity rise, computed here from the chains
        rise = {(c["regime"], c["seed"]): c["generations"][-1]["metrics"]["perplexity"]
                / c["generations"][0]["metrics"]["perplexity"] - 1 for c in data["chains"]}
        diffs = [100 * (rise["fully_synthetic", s] - rise["fresh_data", s]) for s in data["summary"]["seeds"]]
        t = data["config"]["sampling"]["temperature"]
        (text,) = [text for _, text in items if f"temperature={t}" in text]
        shown = float(re.search(r"paired by seed: ([-0-9.]+) points", text).group(1))
        assert abs(shown - sum(diffs) / len(diffs)) < 0.1, (text, diffs)
        assert f"worse in {sum(d > 0 for d in diffs)} of {len(diffs)}" in text
