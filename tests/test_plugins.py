"""Plug-ins: files and modules through --plugin / plugins:, installed entry points, and the one-line failures.

    .venv/bin/python -m pytest -q tests/test_plugins.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, madbench, one_line_error

from madbench.cli import COMMANDS, build_parser, main

GOOD = '''
"""A plug-in file: a regime and a metric."""
from madbench.metrics import METRICS
from madbench.loop.regimes import REGIMES


@REGIMES.register("half_real")
def half_real(ctx):
    """Half the mix real, half the previous generation's samples."""
    n = ctx.train_docs // 2
    return ctx.pool[:n] + list(ctx.synthetic.get(ctx.generation - 1, []))[:n]


@METRICS.register("mean_chars", higher_is_better=None)
def mean_chars(ctx):
    """Mean characters per sample."""
    return sum(map(len, ctx.samples)) / max(1, len(ctx.samples))
'''


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.slow
def test_a_plugin_file_registers_and_list_names_its_origin_before_or_after_the_verb(tmp_path):
    good = write(tmp_path / "good.py", GOOD)
    proc = madbench("--plugin", good, "list", "regimes", check=True)
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert f"file {good}" in rows["half_real"]
    assert rows["fully_synthetic"].split()[1] == "builtin"  # madbench's own entries stay builtin
    proc = madbench("list", "metrics", "--plugin", good, check=True)
    assert f"file {good}" in next(line for line in proc.stdout.splitlines() if "mean_chars" in line)


@pytest.mark.slow
def test_a_config_file_loads_its_plugins_relative_to_itself(tmp_path):
    write(tmp_path / "good.py", GOOD)
    cfg = write(tmp_path / "exp.yaml", """
        plugins: [good.py]
        loop: {regimes: [half_real], generations: 1}
        eval: {metrics: [mean_chars, distinct_2], tasks: []}
    """)
    proc = madbench("run", "--preset", "smoke", "--config", cfg, "--output-dir", tmp_path / "run", "--dry-run",
                    "--load-plugins", cwd=tmp_path.parent, check=True)
    assert "half_real" in proc.stdout and "mean_chars" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("source, problem", [
    ("from madbench.mitigations import MITIGATIONS, Mitigation\n"
     "@MITIGATIONS.register('my_ok')\nclass Ok(Mitigation):\n    pass\n"
     "@MITIGATIONS.register('mix_real')\nclass Mine(Mitigation):\n    pass\n",
     "mitigation 'mix_real' clashes with a built-in mitigation"),
    ("import a_module_nobody_has\n", "failed to load: ModuleNotFoundError: No module named 'a_module_nobody_has'"),
    ("from madbench.mitigations import MITIGATIONS\n@MITIGATIONS.register('not_a_class')\ndef f(docs, ctx):\n    return docs, {}\n",
     "must be a subclass of madbench.mitigations.Mitigation"),
    ("from madbench.metrics import METRICS\n@METRICS.register('m', higher_is_better='yes')\ndef m(ctx):\n    return 1.0\n",
     "higher_is_better must be True, False or None"),
    ("from madbench.metrics import METRICS\n@METRICS.register('m', needs='everything')\ndef m(ctx):\n    return 1.0\n",
     "metric 'm': needs must be 'samples', 'model' or 'human', got 'everything'"),
    ("from madbench.loop.regimes import REGIMES\n@REGIMES.register('r2')\ndef r2(ctx, extra):\n    return []\n",
     "regime 'r2' must take one argument"),
    ("from madbench.mitigations import MITIGATIONS, Mitigation\n@MITIGATIONS.register('aims_badly')\n"
     "class A(Mitigation):\n    target_metric = 'perplexty'\n", "target_metric 'perplexty' is not a registered metric"),
    ("x = 1\n", "registered nothing"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_the_problem(tmp_path, source, problem):
    bad = write(tmp_path / "bad.py", source)
    line = one_line_error(madbench("run", "--plugin", bad, "--preset", "smoke", "--dry-run"), alone=True)
    assert f"plugin '{bad}'" in line and problem in line, line


@pytest.mark.slow
def test_a_missing_plugin_module_or_file_is_one_line():
    assert "no module named 'no_such_plugin_pkg'" in one_line_error(madbench("list", "--plugin", "no_such_plugin_pkg"), alone=True)
    assert "not found" in one_line_error(madbench("--plugin", "nowhere/x.py", "list"), alone=True)


@pytest.mark.slow
def test_a_failed_plugin_leaves_nothing_behind(tmp_path):
    """All or nothing: the entries a plug-in registered before it failed are removed; the built-ins stay."""
    code = textwrap.dedent("""
        import sys
        from madbench.errors import MadbenchError
        from madbench.mitigations import MITIGATIONS
        from madbench.plugins import load_plugin
        try:
            load_plugin(sys.argv[1])
        except MadbenchError as exc:
            print("ERR", exc)
        print(sorted(MITIGATIONS.names()), MITIGATIONS.origin("mix_real"))
    """)
    bad = write(tmp_path / "bad.py", "from madbench.mitigations import MITIGATIONS, Mitigation\n"
                "@MITIGATIONS.register('my_ok')\nclass Ok(Mitigation):\n    pass\n"
                "@MITIGATIONS.register('mix_real')\nclass Mine(Mitigation):\n    pass\n")
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, check=True).stdout
    assert "ERR" in out and "my_ok" not in out.split("ERR")[1].splitlines()[1]
    assert out.strip().endswith("builtin") and "'mix_real'" in out.splitlines()[-1]


def _install(tmp_path: Path, name: str, files: dict, entry_points: str) -> Path:
    src = tmp_path / name
    (src / "src").mkdir(parents=True)
    for rel, text in files.items():
        (src / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        write(src / "src" / rel, text)
    write(src / "pyproject.toml", f"""
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.0.1"
        {entry_points}
        [tool.setuptools.packages.find]
        where = ["src"]
    """)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
                    str(src)], check=True, capture_output=True, text=True)
    return site


@pytest.mark.slow
def test_a_broken_installed_entry_point_is_skipped_with_one_warning_and_builtins_keep_working(tmp_path, monkeypatch):
    site = _install(tmp_path, "broken-madbench-plugin", {
        "broken_plugin/__init__.py": "",
        "broken_plugin/bad.py": "raise RuntimeError('boom at import')\n",
        "broken_plugin/clash.py": "from madbench.mitigations import Mitigation\nclass MixReal(Mitigation):\n    pass\n",
        "broken_plugin/ok.py": "def shouting(ctx):\n    '''Share of upper-case characters.'''\n    return 0.0\nshouting.higher_is_better = False\n",
    }, """
        [project.entry-points."madbench.mitigations"]
        exploding = "broken_plugin.bad:Thing"
        mix_real = "broken_plugin.clash:MixReal"
        [project.entry-points."madbench.metrics"]
        shouting = "broken_plugin.ok:shouting"
    """)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = madbench("list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("madbench: warning: plugin ") for w in warnings), warnings
    assert "'exploding'" in warnings[0] and "RuntimeError: boom at import" in warnings[0] and "broken-madbench-plugin" in warnings[0]
    assert "'mix_real'" in warnings[1] and "clashes with a built-in" in warnings[1]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert rows["mix_real"].split()[1] == "builtin" and "exploding" not in rows
    assert "entry point broken-madbench-plugin 0.0.1" in rows["shouting"]
    assert rows["shouting"].endswith("[lower is better] Share of upper-case characters.")  # its attributes, as a spec


def test_a_command_whose_module_fails_to_import_says_so_instead_of_vanishing(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "broken", ("madbench.no_such_module", "a verb whose module is missing"))
    parser = build_parser()
    assert "broken" in parser.format_help() and "unavailable" in parser.format_help()
    assert main(["broken", "--anything"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "command 'broken' is unavailable: its module madbench.no_such_module failed to import" in err[0]
    assert main(["list", "presets"]) == 0  # the other verbs still work


@pytest.mark.slow
def test_every_command_takes_plugin_and_regress_loads_it_before_anything_runs(tmp_path):
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert set(verbs) == set(COMMANDS)
    assert all("--plugin" in verbs[v]._option_string_actions for v in COMMANDS)
    bad = write(tmp_path / "bad.py", "raise ValueError('not today')\n")
    line = one_line_error(madbench("regress", "--plugin", bad, "--seeds", "0", "--output-dir", tmp_path / "r"), alone=True)
    assert f"plugin '{bad}' failed to load: ValueError: not today" in line
    assert not (tmp_path / "r").exists()  # nothing ran


@pytest.mark.slow
def test_sweep_workers_load_the_plugins_of_the_command(tmp_path):
    import yaml

    good = write(tmp_path / "good.py", GOOD)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "preset": "smoke", "name": "plugin-sweep", "loop": {"generations": 1},
        "data": {"train_docs": 8, "eval_docs": 8}, "sampling": {"num_samples": 8, "max_new_tokens": 16, "batch_size": 8},
        "eval": {"metrics": ["perplexity", "mean_chars"], "tasks": []},
        "grid": {"loop.regimes": ["half_real"], "loop.seeds": [0]}}))
    out = tmp_path / "sweep"
    proc = madbench("sweep", "--plugin", good, "--config", spec, "--output-dir", out, "--workers", "1", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = __import__("json").loads((out / "runs" / "base" / "results.json").read_text())
    assert results["complete"] and all(g["metrics"]["mean_chars"] > 0 for c in results["chains"] for g in c["generations"])


@pytest.mark.slow
def test_a_plugin_corpus_and_model_train_a_real_generation(tmp_path, monkeypatch):
    plugin = write(tmp_path / "data_and_model.py", '''
        import os
        from pathlib import Path

        from madbench.data.corpus import CORPORA
        from madbench.models.base_model import MODELS


        @CORPORA.register("topics_reversed")
        def topics_reversed():
            """Python's documentation topics, last first."""
            from pydoc_data.topics import topics

            return [" ".join(t.split()) for _, t in sorted(topics.items(), reverse=True)]


        @MODELS.register("tiny_via_plugin")
        def tiny_via_plugin(cfg, split):
            """The tiny model, built through a plug-in."""
            from madbench.models.tiny import build_tiny_model

            path = build_tiny_model(cfg, split)
            Path(os.environ["PLUGIN_MARKER"]).write_text(str(path))
            return path
    ''')
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("PLUGIN_MARKER", str(marker))
    proc = madbench("run", "--plugin", plugin, "--preset", "smoke", "--output-dir", tmp_path / "run",
                    "model.name=tiny_via_plugin", "data.corpus=topics_reversed", "loop.generations=0",
                    "loop.regimes=[fully_synthetic]", "eval.tasks=[]", "eval.metrics=[perplexity]", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = __import__("json").loads((tmp_path / "run" / "results.json").read_text())
    assert results["chains"][0]["generations"][0]["metrics"]["perplexity"] > 1
    assert Path(marker.read_text()).is_dir()  # the plug-in resolved the model the run trained
    saved = __import__("json").loads((tmp_path / "run" / "config.json").read_text())
    assert saved["plugin_sha256"] == {str(plugin): __import__("hashlib").sha256(plugin.read_bytes()).hexdigest()}


@pytest.mark.slow
def test_a_package_folder_plugin_may_use_relative_imports(tmp_path):
    pkg = tmp_path / "myplug"
    pkg.mkdir()
    write(pkg / "__init__.py", "from .impl import Filt  # noqa: F401\n")
    write(pkg / "impl.py", '''
        from madbench.mitigations import MITIGATIONS, Mitigation


        @MITIGATIONS.register("pkg_filter")
        class Filt(Mitigation):
            """A mitigation from a package folder."""
    ''')
    proc = madbench("list", "mitigations", "--plugin", pkg, check=True)
    assert f"file {pkg / '__init__.py'}" in next(line for line in proc.stdout.splitlines() if "pkg_filter" in line)
