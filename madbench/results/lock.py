"""One writer per run folder and per sweep folder.

    with folder_lock(run_dir, "run"):      # a second `madbench run` on the folder gets one line
        ...

The lock is an ``flock`` on ``FOLDER/.madbench.lock``, held for the life of the process:
the kernel drops it when the process ends, however it ends (``kill -9`` included), so a
lock whose process is gone is never stale. The file also names the holder (pid, host,
command) for the refusal message. Sweep workers hold a shared lock on
``SWEEP/.madbench-workers.lock`` so that a re-run also refuses while a leftover worker
of an earlier sweep still writes into the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from madbench.errors import MadbenchError

LOCK_NAME = ".madbench.lock"
WORKERS_LOCK_NAME = ".madbench-workers.lock"
_held: dict = {}  # path -> open handle (re-entrant within one process)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict):
        return "another process"
    when = time.strftime("%H:%M:%S", time.localtime(info.get("started", 0)))
    return f"madbench pid {info.get('pid')} on {info.get('host')} (started {when}: {info.get('command', '')[:80]})"


def acquire(folder: Path, what: str = "run"):
    """Take the folder's lock or raise one line naming the holder; return the open handle."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = str(path.resolve())
    if key in _held:
        return _held[key]
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise MadbenchError(f"{folder} is in use by {_holder(path)}; wait for it to finish or stop it, "
                            f"then run again (two {what}s on one folder would overwrite each other)")
    except OSError as exc:  # a filesystem without flock (some network mounts): run unlocked, but say so
        print(f"madbench: warning: cannot lock {path} ({exc.strerror}); do not start a second {what} on {folder}",
              file=sys.stderr)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                             "command": " ".join(["madbench", *sys.argv[1:]])}))
    handle.flush()
    _held[key] = handle
    return handle


def release(folder: Path) -> None:
    key = str((Path(folder) / LOCK_NAME).resolve())
    handle = _held.pop(key, None)
    if handle is not None:
        handle.close()  # closing the descriptor drops the flock


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run"):
    fresh = str((Path(folder) / LOCK_NAME).resolve()) not in _held
    acquire(folder, what)
    try:
        yield
    finally:
        if fresh:
            release(folder)


def hold_workers_lock(sweep_dir: Path) -> None:
    """In a sweep worker: a shared lock, held until the worker process ends."""
    import fcntl

    handle = open(Path(sweep_dir) / WORKERS_LOCK_NAME, "a+")
    fcntl.flock(handle, fcntl.LOCK_SH)
    _held["workers:" + str(sweep_dir)] = handle


def check_no_workers(sweep_dir: Path) -> None:
    """In a sweep's parent, after taking the sweep lock: refuse while a worker of an earlier sweep lives."""
    import fcntl

    path = Path(sweep_dir) / WORKERS_LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MadbenchError(f"{sweep_dir}: a worker process of an earlier sweep is still running (it holds "
                                f"{path.name}); stop it (fuser {path}) before re-running the sweep")
        fcntl.flock(handle, fcntl.LOCK_UN)
