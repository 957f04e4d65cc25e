"""How many CPU cores this process may actually use, and the load already on them.

    python -c "from madbench.models.threads import available_cores, load_per_core; print(available_cores(), load_per_core())"
    taskset -c 0 python -c "from madbench.models.threads import available_cores; print(available_cores())"   # 1

``os.cpu_count()`` counts the machine's cores, not the ones this process may run on: under
``taskset``/``numactl`` (the affinity mask) or in a container with a CPU quota (cgroup v2
``cpu.max``, v1 ``cpu.cfs_quota_us``) it overcounts, and PyTorch's default thread count
follows it, so intra-op threads outnumber the cores and spin against each other.
:func:`available_cores` is the smallest of the three; sweeps size ``workers x threads`` by it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Cores the cgroup CPU quota allows (rounded up), or None when there is no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
        if quota != "max" and int(period) > 0:
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """Cores this process may use: the affinity mask, capped by the cgroup quota and the machine's count."""
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)) or 1)
    quota = _cgroup_quota()
    if quota:
        counts.append(quota)
    return max(1, min(counts))


def load_per_core() -> float | None:
    """The 1-minute load average per available core (None where the OS has none): above ~1 the cores are taken."""
    try:
        return os.getloadavg()[0] / available_cores()
    except (OSError, AttributeError):
        return None


def thread_info() -> dict:
    """What a run's environment records about its cores."""
    load = load_per_core()
    return {"available_cores": available_cores(), "cgroup_quota_cores": _cgroup_quota(),
            "load_per_core": None if load is None else round(load, 2)}
