"""Clean logs: when output goes to a file, libraries' progress bars and chatter stay out of it.

    madbench run --preset smoke > run.log 2>&1     # start, one line per finished generation, done

In a terminal nothing changes. Otherwise transformers' "Loading weights" / "Writing model
shards" bars, datasets' "Generating split" bars and any tqdm bar left at its defaults are
switched off through their environment variables (set before those libraries are
imported), and :func:`captured_stderr` diverts what lm-eval writes to stderr (its progress
bars, which it always enables, and git's complaints from its environment probe) into a
file of the generation folder, so nothing is lost and the log keeps its one line per
generation.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' own bars follow huggingface_hub's switch
             "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}


def interactive() -> bool:
    """Whether a person watches: stderr (where bars go) is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def quiet_libraries(always: bool = False) -> None:
    """Turn third-party progress bars off when stderr is not a terminal, or ``always`` (the Python API: madbench's
    own one line per generation is the progress); call before importing them when possible."""
    if interactive() and not always:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if "transformers" in sys.modules:  # imported already (tests, the Python API): switch it directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


@contextlib.contextmanager
def captured_stderr(log_file: Path):
    """Send everything written to file descriptor 2 (Python and subprocesses) to ``log_file`` meanwhile;
    a no-op in a terminal. The file is written only when something was captured."""
    if interactive():
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # a replaced sys.stderr (pytest capture): nothing to divert
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            data = tmp.read()
            if data.strip():
                from madbench.results.fileio import atomic_write_text

                atomic_write_text(Path(log_file), data.decode("utf-8", errors="replace"))
