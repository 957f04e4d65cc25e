"""The CPU a computation ran on, as results and the shipped tiny models record it.

    python -c "from madbench.processor import processor; print(processor()['kind'])"

Two results are bit-comparable only when ``processor()["kind"]`` agrees: torch picks its kernels by the
ISA (AVX2, AVX-512, AMX, ...), and their rounding differs (docs/speed.md, madbench/models/tiny.py).
"""

from __future__ import annotations

import platform
from pathlib import Path

_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_fp16", "sve", "asimd")


def processor() -> dict:
    """The CPU that ran the computation: its name, vendor, the ISA features that pick the kernels, and
    torch's dispatch level. Two results are bit-comparable only when ``processor()["kind"]`` agrees."""
    import torch

    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "vendor_id", "flags", "Features", "CPU implementer") and key not in fields:
                fields[key] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    isa = [f for f in _ISA_FLAGS if f in flags]
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        capability = None
    kind = " | ".join(x for x in (name, ",".join(isa), capability) if x)
    return {"name": name, "vendor": fields.get("vendor_id") or fields.get("CPU implementer"), "machine": platform.machine(),
            "isa": isa, "torch_capability": capability, "kind": kind}
