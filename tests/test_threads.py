"""The thread policy counts the cores the process may use (affinity), not the machine's."""

import os
import subprocess
import sys

import pytest

from madbench.models.threads import _cgroup_quota, available_cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_available_cores_follows_affinity():
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
            "from madbench.models.threads import available_cores; print(available_cores())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
    assert available_cores() == min(len(os.sched_getaffinity(0)), os.cpu_count(), _cgroup_quota() or 10**6)


def test_cgroup_quota_parses_v2(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(tmp_path) is None
