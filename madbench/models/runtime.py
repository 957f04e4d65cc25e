"""Process settings that make PyTorch on the CPU fast: glibc's allocator.

    madbench bench                       # measures with it (the default)
    MADBENCH_MALLOC=0 madbench bench     # measures without it

glibc serves every allocation above its mmap threshold (128 KB, rising to at most
32 MB as blocks are freed) with a fresh ``mmap`` and gives it back with ``munmap``
on free, so a tensor allocated per step (a decode step's 12 MB probability rows,
a training step's 200 MB of logits) page-faults all of its memory in again every
time. PyTorch's CPU tuning guide answers this with jemalloc or tcmalloc through
``LD_PRELOAD``; :func:`tune_allocator` gets the same effect from glibc itself with
``mallopt``: blocks up to 1 GB come from the heap and stay there for reuse, for
about 1.4 GB more resident memory. ``madbench bench --no-baseline`` with and without
``MADBENCH_MALLOC=0`` (SmolLM2-135M, 2-core Zen 5): LoRA training 631 -> 866 tok/s,
evaluation 1405 -> 2076 tok/s, a generation step 22.2 -> 17.4 s; warm sampling is
unchanged (glibc's own threshold rises to its 12 MB blocks after the first frees).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
HEAP_BLOCKS_UP_TO = 1 << 30
_state = {"tuned": None}


def tune_allocator() -> bool:
    """Keep large blocks in glibc's heap (Linux only; idempotent); return whether the setting is active."""
    if _state["tuned"] is not None:
        return _state["tuned"]
    tuned = False
    if os.environ.get("MADBENCH_MALLOC", "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO) and libc.mallopt(M_TRIM_THRESHOLD, HEAP_BLOCKS_UP_TO)
                         and libc.mallopt(M_TOP_PAD, 64 << 20))
        except (OSError, AttributeError):  # not glibc (macOS, musl): leave the allocator alone
            tuned = False
    _state["tuned"] = tuned
    return tuned


def settings() -> dict:
    """What a result file records about these settings."""
    return {"heap_allocator_tuned": bool(_state["tuned"])}
