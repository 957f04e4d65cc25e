"""Shared fixtures: a per-session model cache and one real smoke run folder.

The smoke run uses the tiny model (built offline in seconds) and the real CLI,
so every test that needs results.json reads files a real run wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_venv import fresh_venv  # noqa: F401  (session fixture: an empty venv with the wheel, tests/fresh_venv.py)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def madbench_cache(tmp_path_factory):
    if "MADBENCH_CACHE" not in os.environ:
        os.environ["MADBENCH_CACHE"] = str(tmp_path_factory.mktemp("madbench-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Path(os.environ["MADBENCH_CACHE"])


def madbench(*args, cwd=None, timeout=600, check=False):
    """Run the real CLI in a subprocess; return CompletedProcess (text)."""
    proc = subprocess.run([sys.executable, "-m", "madbench", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"madbench {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def tiny_with_adapter():
    """(cfg, split, tokenizer, model): the smoke preset's tiny model with a LoRA adapter whose B is not zero
    (B = 0 would leave the merged weights equal to the base's), in eval mode."""
    import torch

    from madbench.config.presets import PRESETS
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model
    from madbench.training.trainer import make_peft_model

    cfg = build_config(PRESETS.get("smoke")(), None, [])
    split = load_split(cfg)
    tokenizer, base = load_base(resolve_model(cfg, split), cfg)
    model = make_peft_model(base, cfg, 0, None)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    return cfg, split, tokenizer, model.eval()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, madbench_cache) -> Path:
    """A finished `madbench run --preset smoke` folder (3 regimes x 3 generations, tiny model)."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    madbench("run", "--preset", "smoke", "--output-dir", out, check=True)
    return out
