"""Named starting configs. ``madbench run --preset NAME`` then applies --config and overrides."""

from __future__ import annotations

from madbench.registry import Registry

PRESETS = Registry("preset")


def preset(name: str, description: str, values: dict) -> None:
    PRESETS.register(name, description=description)(lambda: {"name": name, **values})


preset("default", "SmolLM2-135M on KJV, 3 regimes from one shared generation 0, 5 generations (~20 min on 2 cores)", {})

preset("smoke", "every regime, 2 generations, tiny model; under 2 minutes on 2 cores", {
    "model": {"name": "tiny", "tiny_size": "small", "dtype": "float32"},
    "data": {"train_docs": 24, "eval_docs": 24, "doc_words": 32, "max_docs": 2000},
    "loop": {"generations": 2},
    "sampling": {"num_samples": 24, "max_new_tokens": 32, "batch_size": 24},
    "train": {"epochs": 1, "batch_size": 8, "seq_len": 64, "learning_rate": 3e-3, "mixed_precision": "no"},
    "eval": {"task_docs": 16},  # lm-eval tasks: 16 held-out docs each keep a generation's scoring to a few seconds
})

preset("tiny", "the tiny model with enough generations to show collapse (used by regress)", {
    "model": {"name": "tiny", "tiny_size": "base", "dtype": "float32"},
    "data": {"train_docs": 64, "eval_docs": 64, "doc_words": 32, "max_docs": 4000},
    "loop": {"generations": 4},
    "sampling": {"num_samples": 64, "max_new_tokens": 48, "batch_size": 64, "temperature": 0.8, "top_p": 0.9},
    "train": {"epochs": 3, "batch_size": 8, "seq_len": 64, "learning_rate": 3e-3, "mixed_precision": "no"},
    # a fixed, cheap panel: regress compares these against its reference values
    "eval": {"metrics": ["perplexity", "distinct_1", "distinct_2", "distinct_3", "type_token_ratio"], "tasks": []},
})

# The published protocols (shumailov2024, gerstgrasser2024, mad2024, drayson2025): madbench/config/protocols.py
from madbench.config.protocols import register as _register_protocols  # noqa: E402

_register_protocols(preset)
