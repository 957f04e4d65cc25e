"""Atomic file writes and small JSON/JSONL helpers.

Every file madbench writes goes through these functions: data is written to a
temporary file in the same folder, fsynced, then renamed over the target, so a
crash or Ctrl-C leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Binary twin of :func:`atomic_write_text` (images, archives)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike) -> list:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line of an append-only log after a crash
    return rows


def append_jsonl(path: str | os.PathLike, row: Any) -> None:
    """Append one line to a log; a torn last line after a crash is skipped by read_jsonl."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=_jsonable) + "\n")
        handle.flush()


def atomic_dir(final: str | os.PathLike) -> Path:
    """Return a fresh temporary sibling folder; call :func:`commit_dir` to publish it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; published folders get normal permissions
    return tmp


@contextlib.contextmanager
def removed_on_error(tmp: str | os.PathLike):
    """``with removed_on_error(tmp): ...`` deletes the unfinished temporary folder if the block fails."""
    try:
        yield
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the ``.NAME.XXXX.tmp`` folders/files that :func:`atomic_dir` and the writers above leave
    when a process is killed; call only while holding the folder's lock. Returns how many were removed."""
    removed = 0
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def commit_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename a finished temporary folder into place (replacing an unfinished one)."""
    final = Path(final)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def publish_cached(tmp: str | os.PathLike, final: str | os.PathLike, marker: str = "config.json") -> Path:
    """Publish a finished cache folder unless another process published the same one meanwhile (two runs or
    test workers building one model at once): then the temporary copy is dropped and the published one kept,
    never replaced under a reader's feet."""
    final = Path(final)
    if (final / marker).is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    try:
        commit_dir(tmp, final)
    except OSError:  # the other process renamed its copy into place between the check and the rename
        if not (final / marker).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def cache_dir() -> Path:
    """``$MADBENCH_CACHE`` (default ``~/.cache/madbench``): converted and tiny models (models/base_model.py, tiny.py)."""
    return Path(os.environ.get("MADBENCH_CACHE", Path.home() / ".cache" / "madbench"))
