"""Published protocols as presets: what each paper fixes, and which overrides depart from it.

    madbench run --preset shumailov2024                                  # the offline stand-in
    madbench run --preset shumailov2024 model.name=facebook/opt-125m data.corpus=hf:NAME[:SPLIT]   # online
    madbench run --preset gerstgrasser2024
    madbench sweep --config sweeps/mad2024.yaml                          # regimes x sampling bias
    madbench sweep --config sweeps/drayson2025.yaml                      # decoding strategies

Each protocol is a preset (its ``values``) plus the keys the paper fixes (``fixed``). Model,
corpus, sizes and generations may be overridden freely; an override of a fixed key still
runs, but ``madbench run`` prints that the run deviates from the published protocol and
records it in ``RUN/protocol.json`` and ``results.json``. A short card per protocol lives in
``docs/protocols/<name>.md`` (paper, what it fixes, what the offline default substitutes, cost).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from madbench.config.run_config import to_plain

PROTOCOLS: Dict[str, dict] = {
    # Each value below is read from the paper's released code; the card (docs/protocols/<name>.md) gives the file and
    # line per row, and tests/test_protocol_cards.py checks that the card's table and this preset agree.
    "shumailov2024": {
        "paper": "Shumailov et al. 2024, AI models collapse when trained on recursively generated data (Nature)",
        "description": "full fine-tuning, 64-word real prompts, 64 new tokens, beam search (5 beams, repetition penalty 3.0), "
                       "5 epochs at lr 2e-5; chains keeping 0% and 10% of the original data",
        "values": {
            "data": {"doc_words": 128, "prompt_words": 64},
            "loop": {"regimes": ["fully_synthetic", "synthetic_augmentation"], "real_fraction": 0.1, "init_from": "previous"},
            "sampling": {"max_new_tokens": 64, "min_new_tokens": 64, "keep_prompt": False, "num_beams": 5,
                         "repetition_penalty": 3.0, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "batch_size": 16},
            "train": {"method": "full", "epochs": 5, "learning_rate": 2e-5},
        },
        "fixed": ["train.method", "train.epochs", "train.learning_rate", "data.prompt_words", "sampling.max_new_tokens",
                  "sampling.min_new_tokens", "sampling.keep_prompt", "sampling.num_beams", "sampling.repetition_penalty",
                  "loop.regimes", "loop.real_fraction"],
    },
    "gerstgrasser2024": {
        "paper": "Gerstgrasser et al. 2024, Is Model Collapse Inevitable? Breaking the Curse of Recursion by Accumulating "
                 "Real and Synthetic Data",
        "description": "replace (the last generation's samples only) vs accumulate (the real data plus every generation's "
                       "samples) vs accumulate-subsample (the same pool, a fixed training budget); every generation "
                       "fine-tunes the initial model (full fine-tuning, 1 epoch) on unconditional temperature-1 samples",
        # accumulate keeps the whole real set (real_fraction 1) and appends every generation's samples, as the paper's
        # accumulate does; replace trains on the last samples only (fully_synthetic ignores real_fraction)
        "values": {
            "loop": {"regimes": ["fully_synthetic/replace", "synthetic_augmentation/accumulate",
                                 "synthetic_augmentation/accumulate_subsample"], "real_fraction": 1.0, "init_from": "base"},
            "sampling": {"prompt": "none", "temperature": 1.0, "top_p": 1.0, "top_k": 0, "num_beams": 1},
            "train": {"method": "full", "epochs": 1, "learning_rate": 5e-5},
        },
        "fixed": ["loop.regimes", "loop.real_fraction", "loop.init_from", "train.method", "train.epochs",
                  "sampling.prompt", "sampling.temperature", "sampling.top_p", "sampling.top_k", "sampling.num_beams"],
    },
    "mad2024": {
        "paper": "Alemohammad et al. 2024, Self-Consuming Generative Models Go MAD (ICLR)",
        "description": "fully synthetic / synthetic augmentation / fresh data loops; the sampling-bias axis is "
                       "sweeps/mad2024.yaml",
        "values": {"loop": {"regimes": ["fully_synthetic", "synthetic_augmentation", "fresh_data"]}},
        "fixed": ["loop.regimes"],
    },
    "drayson2025": {
        "paper": "Drayson et al. 2025, Machine-generated text detection prevents language model collapse",
        "description": "fully synthetic chains; every generation fine-tunes the base model (full, 1 epoch, batch 8, "
                       "lr 5e-5) on continuations of distinct real prompts; the decoding axis (greedy, 5-beam, "
                       "nucleus 0.95, pure sampling, T=0.9, top-k 50) is sweeps/drayson2025.yaml",
        "values": {
            "data": {"doc_words": 128, "prompt_words": 64},
            "loop": {"regimes": ["fully_synthetic"], "init_from": "base"},
            "sampling": {"max_new_tokens": 64, "min_new_tokens": 64, "keep_prompt": True, "temperature": 1.0, "top_p": 1.0,
                         "top_k": 50, "num_beams": 1},
            "train": {"method": "full", "epochs": 1, "batch_size": 8, "learning_rate": 5e-5},
        },
        "fixed": ["loop.regimes", "loop.init_from", "train.method", "train.epochs", "train.batch_size",
                  "train.learning_rate", "sampling.min_new_tokens", "sampling.keep_prompt"],
    },
}


def register(preset) -> None:
    """Register every protocol as a preset (called by madbench.config.presets)."""
    for name, p in PROTOCOLS.items():
        preset(name, f"{p['paper'].split(',')[0]} protocol: {p['description']} (docs/protocols/{name}.md)", p["values"])


def _get(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        node = node[part]
    return node


def check(preset_name: str, cfg) -> Optional[dict]:
    """None for a preset that is not a published protocol; else {protocol, paper, deviations: [...]}."""
    p = PROTOCOLS.get(preset_name)
    if p is None:
        return None
    wanted, got = to_plain(p["values"]), cfg.to_dict()
    deviations: List[dict] = []
    for key in p["fixed"]:
        expected, actual = _get(wanted, key), _get(got, key)
        if expected != actual:
            deviations.append({"key": key, "protocol": expected, "run": actual})
    return {"protocol": preset_name, "paper": p["paper"], "card": f"docs/protocols/{preset_name}.md",
            "deviations": deviations}


def describe(info: dict) -> Optional[str]:
    """One line for a run that departs from its published protocol, else None."""
    if not info or not info["deviations"]:
        return None
    parts = [f"{d['key']}={d['run']!r} (protocol: {d['protocol']!r})" for d in info["deviations"]]
    return f"this run deviates from the published protocol {info['protocol']}: " + ", ".join(parts)
