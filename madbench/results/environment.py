"""What produced a result: library versions, git commit, device, host"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


PACKAGES = ("madbench", "torch", "transformers", "peft", "accelerate", "datasets", "evaluate", "lm_eval", "tokenizers", "numpy")


def git_commit() -> dict:
    root = Path(__file__).resolve().parents[2]
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None}


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# instruction-set features that change which floating-point kernels run (and so a seed's trajectory)
from madbench.processor import processor  # noqa: E402,F401  (re-exported: results record it)


def device_info() -> dict:
    import torch

    from madbench.models.threads import thread_info

    info = {"device": "cuda" if torch.cuda.is_available() else "cpu", "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), **thread_info(), "processor": processor(), "platform": platform.platform(), "python": platform.python_version()}
    from madbench.models.attention import wanted_implementation
    from madbench.models.runtime import settings

    info.update(settings(), attention=wanted_implementation(info["device"], "model default"),
                decode_step="model forward" if os.environ.get("MADBENCH_DECODE") == "hf" or info["device"] != "cpu"
                else "llama_decode where the model is a Llama")
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def numerics(cfg) -> dict:
    """What fixes a run's arithmetic on this machine: the processor kind (which kernels torch picks), the device,
    and what ``model.dtype`` and ``train.mixed_precision`` resolve to here ('auto' is bf16 only where the CPU has
    it). Two segments of one run with different numerics would mix two trajectories in one chain."""
    import torch

    from madbench.models.base_model import pick_dtype
    from madbench.training.trainer import mixed_precision

    return {"processor": processor()["kind"], "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "dtype": str(pick_dtype(cfg.model.dtype)).removeprefix("torch."), "mixed_precision": mixed_precision(cfg)}


def environment() -> dict:
    return {"versions": versions(), "git": git_commit(), **device_info(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
