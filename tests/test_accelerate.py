"""`accelerate launch` with 2 CPU processes: data-parallel LoRA and full fine-tuning, one writer, same layout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from madbench.results.collect import validate_results

pytestmark = pytest.mark.slow  # (docs/developing.md): spawns the CLI, trains a run, builds a package or launches processes


@pytest.mark.parametrize("method", ["lora", "full"])
def test_accelerate_launch_two_cpu_processes(tmp_path, method):
    out = tmp_path / "ddp"
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher) if launcher.exists() else shutil.which("accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "madbench", "run",
           "--preset", "smoke", "--output-dir", str(out), "loop.regimes=[fully_synthetic]", "loop.generations=1",
           f"train.method={method}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert results["complete"] and len(results["chains"]) == 1
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    # one writer: each step is logged once although two processes ran it
    assert sum(e["event"] == "generation_done" for e in events) == 2
    assert sum(e["event"] == "gen0_trained" for e in events) == 1
    assert not list(out.rglob("*.tmp"))  # the second process left no temporary folders behind
    assert proc.stdout.count("madbench: done") == 1
    weights = {"lora": "adapter/adapter_config.json", "full": "model/model.safetensors"}[method]
    assert (out / "chains" / "fully_synthetic-replace-s0" / "gen_001" / weights).is_file()
