"""A measurement alone and beside N busy processes: ``madbench bench --contention N``.

    madbench bench --quick --no-baseline --contention 2     # the generation step alone, then beside 2 busy processes
    python -c "from madbench.experiments.contention import busy; import time; b = busy(2); time.sleep(2); b.close()"

The busy processes are this interpreter running ``while True: pass`` (one core each at full use, no memory
traffic), started by :class:`busy` and killed by its ``close`` (a ``with`` block's exit, so Ctrl-C kills them
too); on Linux each also asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), so a bench
killed by SIGKILL leaves none behind.

**Fair share.** Linux's scheduler (CFS) shares the cores among runnable *threads*. A process with ``t``
threads (``t <= cores``) beside ``N`` single-threaded busy processes on ``cores`` cores gets
``t * cores / (N + t)`` cores of CPU time instead of ``t``, so its fair slowdown is
``max(1, (N + t) / cores)``: beside 2 busy processes on 2 cores, a 2-thread process is fairly 2x slower.
``t`` is the thread count the step ran with *alone*, so a policy that drops threads under load is held to
the same bar as one that keeps them. ``vs_fair = (loaded / alone) / fair_slowdown``: 1.0 is a fair share,
above it the process loses time to something other than the busy processes' share (spinning threads
waiting for a descheduled one, cache thrash).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# the child: die with the parent (prctl(PR_SET_PDEATHSIG=1, SIGKILL=9)), then spin
_CHILD = ("import os, sys\n"
          "try:\n"
          "    import ctypes; ctypes.CDLL(None).prctl(1, 9)\n"
          "except Exception:\n"
          "    pass\n"
          "if os.getppid() != int(sys.argv[1]):\n"
          "    sys.exit(0)\n"
          "while True: pass\n")


class busy:
    """``n`` busy processes, running from construction until :meth:`close` (or the ``with`` block's end)."""

    def __init__(self, n: int):
        self.procs: list[subprocess.Popen] = []
        try:
            for _ in range(n):
                self.procs.append(subprocess.Popen([sys.executable, "-c", _CHILD, str(os.getpid())],
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def running_now(samples: int = 10, interval: float = 0.02) -> int:
    """Runnable tasks on the machine right now (``/proc/loadavg``'s fourth field, the median of a few reads),
    this reader included; -1 where the OS has no such file."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return -1
        if i + 1 < samples:
            time.sleep(interval)
    return sorted(counts)[len(counts) // 2]


def fair_slowdown(n_busy: int, threads: int, cores: int) -> float:
    """How much slower a ``threads``-thread process fairly runs beside ``n_busy`` busy ones on ``cores`` cores."""
    t = max(1, min(threads, cores))
    return max(1.0, (n_busy + t) / max(1, cores))


def compare(step, n_busy: int, *, threads_alone: int, cores: int, alone: dict, before_loaded=None) -> dict:
    """Run ``step()`` (a timing dict with ``step_seconds``) beside ``n_busy`` busy processes; compare with ``alone``.

    ``before_loaded`` (optional) is called once the busy processes run, e.g. to let a thread policy see them;
    what it returns is recorded."""
    with busy(n_busy) as b:
        time.sleep(0.5)  # let them reach the run queue
        seen = running_now()
        chosen = before_loaded() if before_loaded else None
        loaded = step()
        load_end = os.getloadavg()[0]
        pids = b.pids
    ratio = loaded["step_seconds"] / alone["step_seconds"]
    fair = fair_slowdown(n_busy, threads_alone, cores)
    return {"busy_processes": n_busy, "cores": cores, "threads_alone": threads_alone, "policy_loaded": chosen,
            "running_tasks_seen": seen, "load_avg_1min_end": round(load_end, 2), "busy_pids": pids,
            "alone": alone, "loaded": loaded, "loaded_over_alone": ratio, "fair_slowdown": fair,
            "vs_fair": ratio / fair,
            "fair_definition": "max(1, (busy + min(threads_alone, cores)) / cores): CFS shares cores among runnable threads"}


def measure(n_busy: int, step, alone: dict) -> dict | None:
    """``madbench bench --contention N``: the step again beside ``n_busy`` busy processes, printed; None for 0."""
    if not n_busy:
        return None
    import torch

    from madbench.models.threads import available_cores

    result = compare(step, n_busy, threads_alone=torch.get_num_threads(), cores=available_cores(), alone=alone)
    print_summary(result)
    return result


def print_summary(c: dict) -> None:
    a, b = c["alone"], c["loaded"]
    print(f"contention ({c['busy_processes']} busy processes, {c['cores']} cores, {c['threads_alone']} threads alone): "
          f"step {a['step_seconds']:.1f} s alone, {b['step_seconds']:.1f} s loaded = {c['loaded_over_alone']:.2f}x; "
          f"fair share {c['fair_slowdown']:.2f}x, so {c['vs_fair']:.2f}x its fair share "
          f"(sampling {a['sample_seconds']:.1f} -> {b['sample_seconds']:.1f} s, training {a['train_seconds']:.1f} -> "
          f"{b['train_seconds']:.1f} s)", flush=True)
