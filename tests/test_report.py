"""madbench report: plots and summaries from real run folders, through the real CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import madbench
from madbench import cli
from madbench.reporting.plots import safe_name
from madbench.reporting.report import headline_columns, render


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def _image_ok(path: Path) -> None:
    assert path.stat().st_size > 15_000, path
    with Image.open(path) as img:
        img.verify()
    pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.std() > 5  # lines, text and axes, not a blank canvas


def _fake_run(tmp: Path, name: str, results: dict) -> Path:
    run = tmp / name
    run.mkdir()
    from madbench.results import evidence

    # a run folder without generation folders whose results.json is sealed as madbench seals it
    (run / "results.json").write_text(json.dumps(evidence.stamp(run, results)))
    return run


def _reseeded(results: dict, seed: int, shift: float) -> dict:
    """The same run as if made with another seed: other chain ids, metric values moved by `shift`."""
    r = copy.deepcopy(results)
    r["config_hash"] += f"-s{seed}"
    r["config"]["loop"]["seeds"] = [seed]
    for c in r["chains"]:
        c["seed"] = seed
        c["id"] = f"{c['id']}-reseed{seed}"
        for g in c["generations"]:
            g["metrics"] = {k: None if v is None else v * (1 + shift * (g["generation"] + 1)) for k, v in g["metrics"].items()}
    return r


@pytest.mark.slow
def test_report_cli_on_smoke_run(smoke_run, tmp_path):
    assert (smoke_run / "report" / "report.html").is_file()  # written by madbench run itself
    out = tmp_path / "rep"
    proc = madbench("report", smoke_run, "--out", out, check=True)
    assert str(out) in proc.stdout
    results = _results(smoke_run)
    metrics = sorted({k for c in results["chains"] for g in c["generations"] for k in g["metrics"]})
    assert metrics
    for m in metrics:
        _image_ok(out / f"metric_{safe_name(m)}.png")
    _image_ok(out / "headline.png")
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for chain in results["chains"]:
        assert chain["id"] in md and chain["id"] in page
    assert "perplexity ↓" in md
    _image_ok(out / "tail_density.png")  # per-sample perplexity under generation 0, per chain (metrics/tail.py)
    assert page.count("<img ") == len(metrics) + 2


def test_hostile_strings_are_escaped(smoke_run, tmp_path, capsys):
    results = _results(smoke_run)
    evil = "<script>alert('x')</script>"
    results["chains"][0]["id"] = evil
    results["chains"][0]["regime"] = '"><img src=x onerror=alert(1)>'
    results["run_name"] = "<b>run</b> | pipe"
    run = _fake_run(tmp_path, "evil", results)
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report" / "report.html").read_text()
    md = (run / "report" / "report.md").read_text()
    assert "<script>" not in page and "<img src=x" not in page and "<b>run" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in md and "\\| pipe" in md


def test_pooled_seeds_partial_chain_and_sweep_api(smoke_run, tmp_path):
    base = _results(smoke_run)
    other = _reseeded(base, seed=1, shift=0.05)
    partial = other["chains"][0]
    partial["generations"] = partial["generations"][:-1]  # a chain still running
    partial["complete"] = other["complete"] = False
    run_a = _fake_run(tmp_path, "a", base)
    run_b = _fake_run(tmp_path, "b", other)
    out = tmp_path / "pooled"
    assert cli.main(["report", str(run_a), str(run_b), "--out", str(out), "--metrics", "perplexity,distinct_2"]) == 0
    md = (out / "report.md").read_text()
    assert "Per group over seeds" in md and "(n=2)" in md and "(incomplete)" in md
    assert {p.name for p in out.glob("*.png")} == {"headline.png", "metric_perplexity.png", "metric_distinct_2.png"}
    _image_ok(out / "metric_perplexity.png")
    # the same run given twice is counted once; render() takes results dicts (the sweep's entry point)
    out2 = render([base, base, _reseeded(base, seed=2, shift=-0.03)], tmp_path / "sweep")
    md2 = (out2 / "report.md").read_text()
    assert "given twice" in md2 and "(n=2)" in md2


@pytest.mark.slow
def test_user_errors_are_one_line(smoke_run, tmp_path, capsys):
    proc = madbench("report", tmp_path / "nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", str(empty)]) == 2
    assert "results.json" in capsys.readouterr().err
    assert cli.main(["report", str(smoke_run), "--out", str(tmp_path / "x"), "--metrics", "perplexty"]) == 2
    assert "did you mean 'perplexity'" in capsys.readouterr().err
    assert cli.main(["report", str(smoke_run), str(smoke_run)]) == 2
    assert "--out" in capsys.readouterr().err


def test_the_headline_panel_is_defined_once_and_each_view_keeps_its_columns():
    """madbench/headline.py: the report's columns, the site's curves and the scores' metrics all come from it."""
    from madbench import headline
    from madbench.leaderboard import scores
    from madbench.leaderboard import curves_view
    from madbench.metrics import HEADLINE, spec

    assert HEADLINE == headline.HEADLINE == ("perplexity", "distinct_2", "self_bleu", "vendi_score", "mauve")
    assert (scores.QUALITY, scores.DIVERSITY) == (headline.QUALITY, headline.DIVERSITY) == ("perplexity", "distinct_2")
    assert curves_view.CURVES == headline.CURVES == ("perplexity", "distinct_2")
    assert spec(headline.QUALITY).higher_is_better is False and spec(headline.DIVERSITY).higher_is_better is True
    assert set(headline.REPORT_ORDER[:5]) == set(HEADLINE)  # the report orders the same panel its own way
    every = sorted(["perplexity", "distinct_1", "distinct_2", "self_bleu", "vendi_score", "mauve", "mtld", "hdd",
                    "frechet_embedding_distance", "type_token_ratio", "madbench_cloze/acc"])
    assert headline_columns(every) == ["perplexity", "self_bleu", "distinct_2", "vendi_score", "mauve", "frechet_embedding_distance"]
    assert headline_columns(["distinct_2", "hdd", "mtld", "perplexity"]) == ["perplexity", "distinct_2", "mtld", "hdd"]
    assert headline_columns(["a", "b", "c", "d", "e", "f", "g", "self_bleu"]) == ["self_bleu", "a", "b", "c", "d", "e"]


def test_config_keys_are_flattened_by_one_helper_everywhere():
    """report (pooling notes) and tracks (frozen protocol) share madbench.config.dotted.flatten (trackers and regress: at merge)."""
    from madbench.config import dotted
    from madbench.reporting import report
    from madbench.config import tracks
    from madbench.config.run_config import RunConfig

    cfg = RunConfig().to_dict()
    flat = dotted.flatten(cfg)
    assert flat["loop.ecosystem.members"] == 3 and flat["sampling.top_p"] == 0.9 and flat["mitigation_params"] == {}
    assert len(flat) == sum(1 for k in flat if "." in k) + 3  # name, seed and the empty mapping stay top-level keys
    cfg["mitigation_params"] = {"dedup": {"threshold": 0.5}}
    assert dotted.flatten(cfg)["mitigation_params.dedup.threshold"] == 0.5 and "mitigation_params" not in dotted.flatten(cfg)
    assert dotted.flatten(cfg, keep=("mitigation_params",))["mitigation_params"] == {"dedup": {"threshold": 0.5}}
    assert report.flatten is tracks.flatten is dotted.flatten
    assert "mitigation_params" not in tracks.protocol(cfg) and tracks.protocol(cfg)["loop.generations"] == 5


def test_metrics_with_approximate_intervals_are_marked_in_the_report():
    """compression_ratio's and MAUVE's intervals fall short of the 90-99% coverage band (docs/metrics.md): the
    report's column says so and a note gives the measured coverage; perplexity's column stays plain."""
    from madbench.reporting.report import _summary

    def gen(g, ppl, comp):
        return {"generation": g, "metrics": {"perplexity": ppl, "compression_ratio": comp},
                "intervals": {"perplexity": [ppl - 5, ppl + 5], "compression_ratio": [comp - 0.1, comp + 0.1]}}

    chain = {"id": "fully_synthetic-replace-s0", "regime": "fully_synthetic", "mode": "replace", "seed": 0,
             "mitigations": [], "complete": True, "generations": [gen(0, 100.0, 2.4), gen(1, 130.0, 3.1)]}
    out = _summary([{"run_name": "r", "config": {}, "complete": True}], [chain], ["perplexity", "compression_ratio"], {}, [])
    comp = next(h for h in out["header"] if h.startswith("compression_ratio"))
    ppl = next(h for h in out["header"] if h.startswith("perplexity"))
    assert "interval approximate" in comp and "approximate" not in ppl
    assert any("compression_ratio: coverage 80%" in n for n in out["notes"])
