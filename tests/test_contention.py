"""`madbench bench --contention N`: the busy processes it starts are gone afterwards (normal end, an error,
Ctrl-C, even SIGKILL of bench), and the bench JSON holds both measurements and their ratio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import madbench

from madbench.experiments.contention import busy, compare, fair_slowdown


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pids, seconds: float = 5.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not any(map(_alive, pids)):
            return True
        time.sleep(0.05)
    return False


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)")


def test_busy_processes_spin_and_are_killed_even_on_error():
    with pytest.raises(RuntimeError):
        with busy(2) as b:
            pids = b.pids
            time.sleep(0.3)
            cpu = [sum(map(int, open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[11:13])) for p in pids]
            assert all(map(_alive, pids)) and all(c > 0 for c in cpu)  # they run and use CPU time
            raise RuntimeError("the measurement failed")
    assert _gone_within(pids, 1.0)


def _child_with_busy(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from madbench.experiments.contention import busy\n"
            "with busy(2) as b:\n"
            "    print(*b.pids, flush=True); time.sleep(60)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", code, root], stdout=subprocess.PIPE, text=True)
    pids = [int(x) for x in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(map(_alive, pids))
    return proc, pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_busy_processes_die_with_ctrl_c_and_sigkill_of_the_parent(tmp_path, sig):
    proc, pids = _child_with_busy(tmp_path)
    proc.send_signal(sig)  # SIGINT: the with block's exit kills them; SIGKILL: PR_SET_PDEATHSIG does
    proc.wait(10)
    assert _gone_within(pids), f"busy processes {pids} outlived their parent after {sig.name}"


def test_compare_reports_both_measurements_and_the_fair_share():
    def step():  # real CPU work, single-threaded
        t = time.perf_counter()
        sum(i * i for i in range(300_000))
        return {"step_seconds": time.perf_counter() - t}

    alone = step()
    c = compare(step, 1, threads_alone=1, cores=os.cpu_count() or 1, alone=alone)
    assert c["alone"] is alone and c["loaded"]["step_seconds"] > 0
    assert c["loaded_over_alone"] == pytest.approx(c["loaded"]["step_seconds"] / alone["step_seconds"])
    assert c["vs_fair"] == pytest.approx(c["loaded_over_alone"] / c["fair_slowdown"])
    assert _gone_within(c["busy_pids"], 1.0)
    assert fair_slowdown(2, 2, 2) == 2.0 and fair_slowdown(2, 1, 2) == 1.5 and fair_slowdown(1, 1, 4) == 1.0
    assert fair_slowdown(2, 8, 2) == 2.0  # threads beyond the cores do not buy a larger share


@pytest.mark.slow  # the real CLI on the tiny model: ~15 s on 2 cores
def test_bench_contention_json(tmp_path):
    out = tmp_path / "bench.json"
    madbench("bench", "model.name=tiny", "model.dtype=float32", "--samples", "4", "--new-tokens", "4", "--train-docs", "4",
             "--eval-docs", "4", "--no-baseline", "--contention", "2", "--out", out, check=True)
    data = json.loads(out.read_text())
    c = data["contention"]
    assert c["busy_processes"] == 2 and c["alone"]["step_seconds"] > 0 and c["loaded"]["step_seconds"] > 0
    assert c["loaded_over_alone"] == pytest.approx(c["loaded"]["step_seconds"] / c["alone"]["step_seconds"])
    assert c["alone"] == data["madbench"] and "fair_definition" in c
    assert data["processor"]["kind"] and len(data["load_avg"]) == 3 and data["available_cores"] >= 1
    assert not any(map(_alive, c["busy_pids"]))


def test_bench_contention_refuses_negative():
    proc = madbench("bench", "model.name=tiny", "--contention", "-1")
    assert proc.returncode == 2 and "--contention" in proc.stderr and "Traceback" not in proc.stderr
