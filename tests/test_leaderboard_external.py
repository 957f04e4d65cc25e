"""Plug-in results as data: a submission made with a real plug-in validates and renders where the plug-in is absent.

    .venv/bin/python -m pytest -q tests/test_leaderboard_external.py

A file plug-in (``rep_filter``: drops samples that repeat a bigram, targets distinct-2) runs a smoke-sized
fully synthetic loop; ``madbench submit`` declares it (distribution, version, url, sha256 of the file the run
recorded); a fresh process with ``MADBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` and no ``--plugin`` validates the file
and builds the site, where the mitigation is marked external with its declaration, every string escaped.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from madbench.leaderboard import bundle

pytestmark = pytest.mark.slow  # one smoke-sized run with a plug-in, then validate and build in subprocesses

REP_FILTER = '''
"""rep_filter: drop synthetic samples that repeat a word bigram (a diversity filter, as a user would write one)."""
from madbench.mitigations import MITIGATIONS, Mitigation


@MITIGATIONS.register("rep_filter")
class RepFilter(Mitigation):
    name = "rep_filter"
    card = "Drops samples in which some word bigram occurs more than max_repeats times."
    target_metric = "distinct_2"
    params = {"max_repeats": 1}

    def filter_samples(self, docs, ctx):
        def ok(text):
            words = text.split()
            pairs = list(zip(words, words[1:]))
            return all(pairs.count(p) <= int(self.p["max_repeats"]) for p in set(pairs))
        kept = [d for d in docs if ok(d.text)] or docs[:1]
        return kept, {"kept": len(kept), "dropped": len(docs) - len(kept)}
'''
HOSTILE_URL = "https://example.org/rep_filter?<script>window.__pwned=1</script>"


def cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "madbench", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=cwd or ROOT)


@pytest.fixture(scope="module")
def made(tmp_path_factory, madbench_cache):
    root = tmp_path_factory.mktemp("external")
    plugin = root / "rep_filter.py"
    plugin.write_text(REP_FILTER)
    run = root / "run"
    proc = cli("--plugin", plugin, "run", "--preset", "smoke", "--output-dir", run, "loop.regimes=[fully_synthetic]",
               "loop.generations=1", "loop.seeds=[0]", "loop.mitigations=[none,rep_filter]", "eval.tasks=[]",
               "eval.metrics=[perplexity,distinct_2]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    subs = root / "subs"
    nourl = cli("submit", run, "--out", subs / "x.json")  # the run's plug-in is loaded from its folder; no url given
    proc = cli("submit", run, "--out", subs / "rep.json", "--submitter", "outsider", "--plugin-url", HOSTILE_URL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "plugin": plugin, "sub": subs / "rep.json", "nourl": nourl, "submit": proc}


def test_submit_declares_the_plugin_with_the_hash_the_run_recorded(made):
    line = [x for x in made["nourl"].stderr.splitlines() if "madbench: error" in x]
    assert made["nourl"].returncode == 2 and len(line) == 1 and "--plugin-url" in line[0] and "rep_filter" in line[0]
    assert not (made["sub"].parent / "x.json").exists()
    data = json.loads(made["sub"].read_text())
    (decl,) = data["plugins"]
    recorded = json.loads((made["root"] / "run" / "config.json").read_text())["plugin_sha256"]
    assert decl == {"kind": "mitigation", "name": "rep_filter", "distribution": "rep_filter", "version": "unversioned",
                    "url": HOSTILE_URL, "sha256": hashlib.sha256(made["plugin"].read_bytes()).hexdigest(),
                    "target_metric": "distinct_2"}
    assert list(recorded.values()) == [decl["sha256"]]
    assert str(made["root"]) not in json.dumps(decl)  # no local path leaks into the submission


def test_it_validates_and_renders_as_external_without_the_plugin(made, tmp_path):
    env = {"MADBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = cli("leaderboard", "validate", made["sub"], env_extra=env)
    assert proc.returncode == 0 and "1 valid, 0 invalid" in proc.stdout, proc.stderr
    proc = cli("leaderboard", "build", "--submissions", made["sub"].parent, "--out", tmp_path / "site", env_extra=env)
    assert proc.returncode == 0 and "0 skipped" in proc.stdout, proc.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    row = next(r for r in index.split("<tr ") if 'data-mitigation="rep_filter"' in r)
    assert 'class="external"' in row
    page = next((tmp_path / "site" / "s").glob("*.html")).read_text()
    assert "External plug-ins" in page and "unversioned" in page
    assert "<script>window" not in page and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page


CASES = [(lambda p: p.pop("sha256"), "plugins/0/sha256"), (lambda p: p.update(sha256="abc"), "plugins/0/sha256"),
         (lambda p: p.update(url="javascript:alert(1)"), "plugins/0/url"),
         (lambda p: p.pop("target_metric"), "plugins/0/target_metric"),
         (lambda p: p.update(name="dedup"), "plugins/0/name"), (lambda p: p.update(kind="optimizer"), "plugins/0/kind"),
         (lambda p: p.update(version=""), "plugins/0/version")]


def test_a_missing_or_malformed_declaration_is_one_line_naming_the_field(made, tmp_path):
    from madbench.leaderboard.validate import check_file
    from madbench.mitigations import MITIGATIONS

    assert "rep_filter" not in MITIGATIONS  # this process never loaded the plug-in
    for change, field in CASES:
        data = json.loads(made["sub"].read_text())
        change(data["plugins"][0])
        data["content_hash"] = bundle.content_hash(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        item = check_file(path)
        assert not item.ok and item.error.field == field and "\n" not in item.line(), (field, item.line())
    undeclared = json.loads(made["sub"].read_text())
    del undeclared["plugins"]
    undeclared["content_hash"] = bundle.content_hash(undeclared)
    path.write_text(json.dumps(undeclared))
    assert "unknown mitigation 'rep_filter' (a plug-in's must be declared under plugins)" in check_file(path).line()
