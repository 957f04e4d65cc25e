"""Plug-ins cannot take the process down, and never run unannounced (issue 28 case 9, issue 29's switch and hash).

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_plugin_safety.py
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

from conftest import ROOT, madbench


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def fake_install(site: Path, dist: str, files: dict, entry_points: str) -> Path:
    """An installed distribution without pip: its modules and a dist-info folder on a sys.path entry."""
    for rel, text in files.items():
        write(site / rel, text)
    info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    write(info / "entry_points.txt", entry_points)
    return site


def with_site(monkeypatch, site: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]))


OK_METRIC = "def shouting(ctx):\n    '''Share of upper-case characters.'''\n    return 0.0\nshouting.higher_is_better = False\n"
OK_MITIGATION = "from madbench.mitigations import Mitigation\nclass Keep(Mitigation):\n    '''Keeps everything.'''\n"


def test_sys_exit_in_a_plugin_file_is_one_error_line_naming_it_not_a_silent_exit(tmp_path):
    bad = write(tmp_path / "quitter.py", "import sys\nsys.exit(0)\n")
    proc = madbench("--plugin", bad, "list", "presets")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
    assert f"plugin '{bad}' failed to load: it called sys.exit(0)" in lines[0]
    assert "smoke" not in proc.stdout  # the command did not run on a half-loaded plug-in


def test_an_entry_point_calling_sys_exit_is_skipped_and_every_command_still_works(tmp_path, monkeypatch):
    site = fake_install(tmp_path / "site", "exiting-plugin", {
        "exiting_plugin/__init__.py": "",
        "exiting_plugin/bad.py": "import sys\nsys.exit(3)\n",
    }, "[madbench.metrics]\nexiting = exiting_plugin.bad:thing\n")
    with_site(monkeypatch, site)
    proc = madbench("list", "presets")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("madbench: warning: plugin 'exiting'"), warnings
    assert "it called sys.exit(3)" in warnings[0] and "exiting-plugin" in warnings[0] and warnings[0].endswith("skipped")
    assert "smoke" in proc.stdout


def test_a_broken_entry_point_drops_only_itself_not_its_packages_valid_entries(tmp_path, monkeypatch):
    site = fake_install(tmp_path / "site", "mixed-plugin", {
        "mixed_plugin/__init__.py": "",
        "mixed_plugin/ok.py": OK_MITIGATION + "\n" + OK_METRIC,
        "mixed_plugin/bad.py": "raise RuntimeError('boom at import')\n",
    }, "[madbench.mitigations]\naaa_keep = mixed_plugin.ok:Keep\nzzz_broken = mixed_plugin.bad:Thing\n"
       "[madbench.metrics]\nshouting = mixed_plugin.ok:shouting\n")
    with_site(monkeypatch, site)
    proc = madbench("list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 1 and "'zzz_broken'" in warnings[0] and "RuntimeError: boom at import" in warnings[0]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "entry point mixed-plugin 0.0.1" in rows["aaa_keep"]  # loaded before the broken one: kept
    assert "entry point mixed-plugin 0.0.1" in rows["shouting"]
    assert "zzz_broken" not in rows


def test_the_environment_switch_turns_off_entry_point_autoloading_but_not_plugin_flags(tmp_path, monkeypatch):
    site = fake_install(tmp_path / "site", "exiting-plugin", {
        "exiting_plugin/__init__.py": "",
        "exiting_plugin/ok.py": OK_METRIC,
        "exiting_plugin/bad.py": "import sys\nsys.exit(3)\n",
    }, "[madbench.metrics]\nexiting = exiting_plugin.bad:thing\nshouting = exiting_plugin.ok:shouting\n")
    with_site(monkeypatch, site)
    assert "shouting" in madbench("list", "metrics", check=True).stdout
    monkeypatch.setenv("MADBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    mine = write(tmp_path / "mine.py", "from madbench.metrics import METRICS\n"
                 "@METRICS.register('mine', higher_is_better=None)\ndef mine(ctx):\n    '''Mine.'''\n    return 1.0\n")
    proc = madbench("--plugin", mine, "list", "metrics", check=True)
    assert proc.stderr == "" and "shouting" not in proc.stdout and "exiting" not in proc.stdout
    assert f"file {mine}" in next(line for line in proc.stdout.splitlines() if line.split()[0] == "mine")


MARKING = '''
import os
from pathlib import Path

from madbench.metrics import METRICS

Path(os.environ["PLUGIN_MARKER"]).write_text("imported")


@METRICS.register("mean_chars", higher_is_better=None)
def mean_chars(ctx):
    """Mean characters per sample."""
    return sum(map(len, ctx.samples)) / max(1, len(ctx.samples))
'''


def test_a_dry_run_announces_a_configs_plugins_and_imports_them_only_when_asked(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("PLUGIN_MARKER", str(marker))
    write(tmp_path / "marking.py", MARKING)
    cfg = write(tmp_path / "exp.yaml", "plugins: [marking.py]\neval: {metrics: [distinct_2], tasks: []}\n")
    proc = madbench("run", "--preset", "smoke", "--config", cfg, "--output-dir", tmp_path / "run", "--dry-run", check=True)
    assert not marker.exists()  # its code did not run
    assert f"not importing the plug-ins named by config {cfg} on --dry-run: marking.py (add --load-plugins" in proc.stderr
    # a name only the plug-in defines: the error says the plug-in was not imported and how to import it
    named = write(tmp_path / "named.yaml", "plugins: [marking.py]\neval: {metrics: [mean_chars], tasks: []}\n")
    proc = madbench("run", "--preset", "smoke", "--config", named, "--output-dir", tmp_path / "run", "--dry-run")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "mean_chars" in last and last.endswith("(the named plug-ins were not imported: add --load-plugins)")
    proc = madbench("run", "--preset", "smoke", "--config", named, "--output-dir", tmp_path / "run", "--dry-run",
                    "--load-plugins", check=True)
    assert marker.read_text() == "imported" and "mean_chars" in proc.stdout
    assert f"loading the plug-ins named by config {named} (their code runs now): marking.py" in proc.stderr


def test_resume_says_it_runs_the_recorded_plugins_and_when_a_plugin_file_changed(tmp_path, monkeypatch):
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config

    marker = tmp_path / "marker"
    monkeypatch.setenv("PLUGIN_MARKER", str(marker))
    plugin = write(tmp_path / "marking.py", MARKING)
    cfg = build_config(PRESETS.get("smoke")(), None, ["eval.tasks=[]", "loop.generations=1"])
    run = tmp_path / "run"
    run.mkdir()
    recorded = hashlib.sha256(b"an older version").hexdigest()  # what the run recorded when it started
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "config_hash": cfg.hash(),
                                                 "plugins": [str(plugin)], "plugin_sha256": {str(plugin): recorded}}))
    proc = madbench("run", "--resume", run, "--dry-run", check=True)
    assert not marker.exists() and f"not importing the plug-ins named by run folder {run}" in proc.stderr
    proc = madbench("run", "--resume", run, "--dry-run", "--load-plugins", check=True)
    assert marker.exists()
    assert f"loading the plug-ins named by run folder {run} (their code runs now): {plugin}" in proc.stderr
    now = hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert f"warning: plug-in {plugin} changed since the run started (sha256 {recorded[:12]} -> {now[:12]})" in proc.stderr
