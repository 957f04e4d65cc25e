"""Damaged run folders, two writers, full disks (issue 14, cases 2, 3, 5, 7), on a real tiny run.

    .venv/bin/python -m pytest -q tests/test_faults_run.py
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, cli, madbench, one_line_error

CHAIN = "fully_synthetic-replace-s0"


@pytest.fixture(scope="module")
def one_chain(smoke_run) -> Path:
    """The session's finished smoke run (conftest): every test damages its own copy."""
    return smoke_run


@pytest.fixture
def run(one_chain, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(one_chain, copy)
    return copy


def gen(run: Path, g: int) -> Path:
    return run / "chains" / CHAIN / f"gen_{g:03d}"


def test_finished_generations_carry_an_integrity_record(one_chain):
    meta = json.loads((gen(one_chain, 1) / "meta.json").read_text())
    files = meta["integrity"]["files"]
    assert {"samples.jsonl", "mix.json", "metrics.json", "adapter/adapter_model.safetensors"} <= set(files)
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in files.values())
    assert "integrity" in json.loads((one_chain / "gen0" / "seed0" / "model_metrics.json").read_text())


@pytest.mark.slow
def test_torn_samples_refused_then_repaired_to_the_same_numbers(run, one_chain):
    samples = gen(run, 1) / "samples.jsonl"
    raw = samples.read_bytes()
    samples.write_bytes(raw[: len(raw) // 2])  # cut mid-line, as a crash of a non-atomic copy would
    shutil.rmtree(gen(run, 2))
    proc = cli("run", "--resume", run)
    one_line_error(proc, str(samples), "--repair")
    assert not gen(run, 2).exists()  # nothing was built on the damaged generation
    proc = cli("report", run)
    one_line_error(proc, "samples.jsonl", "--repair")

    proc = madbench("run", "--resume", run, "--repair", check=True)
    assert "repair:" in proc.stdout
    assert len(samples.read_text().splitlines()) == 24
    (damaged,) = (run / "damaged").iterdir()  # moved, never deleted
    assert (damaged / "chains" / CHAIN / "gen_001" / "samples.jsonl").read_bytes() == raw[: len(raw) // 2]
    fresh = json.loads((run / "results.json").read_text())
    ref = json.loads((one_chain / "results.json").read_text())
    assert fresh["complete"]
    assert [g["metrics"] for g in fresh["chains"][0]["generations"]] == [g["metrics"] for g in ref["chains"][0]["generations"]]


def test_flipped_byte_in_adapter_is_caught(run):
    weights = gen(run, 1) / "adapter" / "adapter_model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1  # same size, other content
    weights.write_bytes(bytes(raw))
    shutil.rmtree(gen(run, 2))
    one_line_error(cli("run", "--resume", run), "adapter_model.safetensors", "SHA-256", "--repair")


@pytest.mark.parametrize("damage,needle", [
    ("truncate_meta", "meta.json is not valid JSON"),
    ("delete_adapter", "adapter"),
    ("truncate_gen0", "model_metrics.json is not valid JSON"),
])
def test_damaged_folder_is_one_line_naming_the_file(run, damage, needle):
    if damage == "truncate_meta":
        meta = gen(run, 1) / "meta.json"
        meta.write_text(meta.read_text()[:50])
    elif damage == "delete_adapter":
        shutil.rmtree(gen(run, 1) / "adapter")
    else:
        path = run / "gen0" / "seed0" / "model_metrics.json"
        path.write_text(path.read_text()[:30])
    one_line_error(cli("run", "--resume", run), needle, "--repair")
    one_line_error(cli("report", run), needle)


def test_binary_results_json_is_one_line_in_report_and_submit(run, tmp_path):
    (run / "results.json").write_bytes(bytes(range(256)) * 4)
    one_line_error(cli("report", run), "results.json", "not text", "--resume")
    one_line_error(cli("submit", run, "--out", tmp_path / "s.json"), "results.json", "not text")


def test_binary_config_json_is_one_line_on_resume(run):
    (run / "config.json").write_bytes(b"\x00\xff" * 100)
    one_line_error(cli("run", "--resume", run), "config.json", "not text")


def test_second_run_on_a_folder_is_refused_and_a_dead_holder_is_not_stale(run):
    code = f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from madbench.results import lock; lock.acquire({str(run)!r}); print('held', flush=True); time.sleep(600)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line_error(cli("run", "--resume", run), f"pid {holder.pid}", "in use")
    finally:
        holder.kill()
        holder.wait()
    assert (run / ".madbench.lock").is_file()  # the file stays; its flock died with the process
    from madbench.results import lock

    with lock.folder_lock(run):  # not stale: taken at once
        pass


def test_leftover_temp_folders_are_removed_on_resume(run):
    left = gen(run, 1).parent / ".gen_002.abc123.tmp"
    (left / "adapter").mkdir(parents=True)
    (left / "adapter" / "adapter_model.safetensors").write_bytes(b"partial")
    meta = gen(run, 2) / "meta.json"
    meta.write_text(meta.read_text()[:40])  # the resume then stops at once: the clean-up comes first
    proc = cli("run", "--resume", run)
    one_line_error(proc, "meta.json is not valid JSON")
    assert not left.exists() and "removed 1 unfinished temporary" in proc.stdout


def test_resume_on_another_kind_of_processor_is_refused_unless_allowed(run):
    """A chain continued on other kernels or another dtype (float32 on AVX2, bf16 on AMX) mixes two trajectories
    that no number shows: refused in one line before anything loads; allowed on request, and recorded."""
    from madbench.processor import processor

    events = run / "events.jsonl"
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    starts = [r for r in rows if r["event"] == "start"]
    first = starts[0]["numerics"]
    assert first["processor"] == processor()["kind"] and first["dtype"] in ("float32", "bfloat16")
    other = {**first, "processor": "Other CPU | avx512f,amx_bf16 | AVX512", "dtype": "bfloat16" if first["dtype"] == "float32" else "float32"}
    events.write_text("".join(json.dumps({**r, "numerics": other} if r["event"] == "start" else r) + "\n" for r in rows))
    proc = cli("run", "--resume", run)  # a finished run only rewrites its results: nothing is computed, nothing refused
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = len(list((run / "chains" / CHAIN).glob("gen_*"))) - 1
    shutil.rmtree(gen(run, last))
    proc = cli("run", "--resume", run)
    one_line_error(proc, "Other CPU", other["dtype"], "--allow-processor-change")
    assert not gen(run, last).exists()
    proc = cli("run", "--resume", run, "--allow-processor-change")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (gen(run, last) / "meta.json").is_file()
    computed_on = json.loads((run / "results.json").read_text())["environment"]["computed_on"]
    assert computed_on == [other, first]


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # any write past 20 kB fails like a full disk


@pytest.mark.slow
def test_full_disk_is_one_line_and_leaves_no_temp_folder(one_chain, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(one_chain / "gen0", run / "gen0")  # generation 0 done: the next write is an adapter
    shutil.copy(one_chain / "config.json", run / "config.json")
    proc = subprocess.run([sys.executable, "-m", "madbench", "run", "--resume", str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=os.environ.copy(), preexec_fn=_limit_file_size)
    one_line_error(proc, "no space", "--resume")
    assert not list(run.rglob("*.tmp"))


# ---------------------------------------------------------------- case 11: opt-ins that run code say so
def _tiny_copy(tmp_path) -> Path:
    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config
    from madbench.models.tiny import packaged_folder

    folder = packaged_folder(build_config(PRESETS.get("smoke")()))  # the smoke preset's model, shipped with madbench
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    return copy


def _cfg(path: Path, **model):
    from madbench.config.run_config import build_config
    from madbench.config.presets import PRESETS

    return build_config(PRESETS.get("smoke")(), None, [f"model.name={path}", *(f"model.{k}={v}" for k, v in model.items())])


def test_trust_remote_code_warns_and_is_recorded(one_chain, tmp_path, capsys):
    from madbench.models.base_model import load_base

    model = _tiny_copy(tmp_path)
    load_base(str(model), _cfg(model, trust_remote_code="true"))
    err = capsys.readouterr().err
    assert f"madbench: warning: model.trust_remote_code is on: Python code shipped with model '{model}' runs" in err
    env = json.loads((one_chain / "results.json").read_text())["environment"]
    assert env["model_warnings"] == []  # recorded with every run (empty: nothing opted into)


def test_model_without_tokenizer_is_one_line(one_chain, tmp_path):
    from madbench.errors import MadbenchError
    from madbench.models.base_model import load_base

    model = _tiny_copy(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model / name).unlink()
    with pytest.raises(MadbenchError, match="cannot load the tokenizer of model"):
        load_base(str(model), _cfg(model))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_blocked_pickle_weights_warn_then_fail_in_one_line(one_chain, tmp_path, capsys):
    import pickle

    from madbench.errors import MadbenchError
    from madbench.models.base_model import load_base

    model = _tiny_copy(tmp_path)
    (model / "model.safetensors").unlink()
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(MadbenchError, match="cannot load model"):
        load_base(str(model), _cfg(model))
    assert "has pickle weights (pytorch_model.bin), no safetensors" in capsys.readouterr().err
