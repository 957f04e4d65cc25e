"""What a generation trains and saves: a LoRA adapter or the full weights (``train.method``).

    madbench run --preset smoke                       # train.method=lora (default): RUN/.../adapter/
    madbench run --preset smoke train.method=full     # every weight fine-tuned:     RUN/.../model/

``lora`` (default): a peft adapter on the shared frozen base (:func:`make_peft_model`),
saved as ``adapter/``; unchanged from earlier versions.

``full``: the whole model is trained, as in every study madbench cites (Shumailov et al. 2024,
Gerstgrasser et al. 2024, Drayson et al. 2025). A generation starts from a copy of the base
model (``loop.init_from=base``) or from the previous generation's saved weights
(``loop.init_from=previous``), trains with fp32 master weights under accelerate
(:func:`madbench.training.trainer.train_lora` trains whatever requires a gradient), is cast back
to the base model's dtype and saved as ``model/`` (``model.safetensors``, ``config.json`` and
the tokenizer), which plain ``AutoModelForCausalLM.from_pretrained(RUN/.../model)`` loads.
Because the next generation and a resumed run both start from those saved weights, a resumed
run computes what an uninterrupted one does.
"""

from __future__ import annotations

import copy
import resource
from pathlib import Path
from typing import Optional

import torch

from madbench.errors import MadbenchError

METHODS = {"lora": "adapter", "full": "model"}  # train.method -> folder saved in each generation


def dirname(cfg) -> str:
    """'adapter' (LoRA) or 'model' (full weights): the folder a generation's weights live in."""
    return METHODS[cfg.train.method]


def check(cfg) -> None:
    """One line before any training for a method that cannot run with these settings."""
    from madbench.registry import did_you_mean

    method = cfg.train.method
    if method not in METHODS:
        raise MadbenchError(f"unknown train.method '{method}';{did_you_mean(method, METHODS)} use lora or full")
    if method != "full":
        return
    from madbench.generation.backends import backend

    if not backend(cfg.sampling.backend).full_weights:
        raise MadbenchError(f"train.method=full cannot sample with sampling.backend={cfg.sampling.backend} (it serves LoRA adapters); "
                            "use sampling.backend=hf or train.method=lora")
    defaults = type(cfg.lora)()  # the LoraConfig defaults, without importing the config layer back
    changed = [f"lora.{k}" for k, v in vars(cfg.lora).items() if getattr(defaults, k) != v]
    if changed:
        raise MadbenchError(f"{', '.join(changed)} only apply to train.method=lora; drop them or use train.method=lora")


def make_peft_model(base, cfg, seed: int, init_adapter: str | None):
    """A fresh trainable LoRA model on a copy of ``base``; or continue ``init_adapter``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    # Share the frozen base tensors instead of copying 270 MB per generation: peft only adds
    # LoRA modules, and nothing here writes to base weights (merging for sampling swaps in
    # new tensors, see madbench.models.inference.merged_lora). Modules and buffers are still copied.
    model = copy.deepcopy(base, memo={id(p): p for p in base.parameters()})
    if init_adapter:
        return PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
    torch.manual_seed(seed)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def init_model(base, cfg, seed: int, init: Optional[Path]):
    """A trainable model for one generation: a new/continued LoRA adapter, or a full copy of the weights."""
    if cfg.train.method == "lora":
        return make_peft_model(base, cfg, seed, str(init) if init else None)
    torch.manual_seed(seed)
    model = load_full(init, base) if init else copy.deepcopy(base)  # a real copy: the base is never written to
    model.requires_grad_(True)
    return model


def load(base, cfg, folder: Path):
    """A generation's saved weights as an eval-mode model (generation 0 for reference scoring, resumed runs)."""
    if cfg.train.method == "lora":
        return make_peft_model(base, cfg, 0, str(folder))
    return load_full(folder, base).eval()


def load_full(folder: Path, base):
    """Full weights saved by :func:`save`, in the base model's dtype, on its device, with its attention."""
    from transformers import AutoModelForCausalLM

    from madbench.models.attention import use_fast_attention

    if not (Path(folder) / "config.json").is_file():
        raise MadbenchError(f"{folder} holds no saved model (config.json missing); was this run made with train.method=lora?")
    param = next(base.parameters())
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=param.dtype).to(param.device)
    use_fast_attention(model)
    return model


def save(model, folder: Path, tokenizer, base) -> None:
    """Save the adapter (LoRA) or the full weights, cast to the base dtype, with the tokenizer (full)."""
    if hasattr(model, "peft_config"):
        model.save_pretrained(folder)
        return
    dtype = next(base.parameters()).dtype
    model.to(dtype)  # fp32 master weights -> the base dtype: what is evaluated is what is saved and reloaded
    attn = getattr(model.config, "_attn_implementation", None)
    try:  # madbench's CPU attention is registered at runtime only: save a config plain transformers loads
        if attn and attn not in ("eager", "sdpa"):
            model.config._attn_implementation = "sdpa"
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        if attn:
            model.config._attn_implementation = attn
    tokenizer.save_pretrained(folder)


def memory() -> dict:
    """Peak resident memory of this process so far (MB) and, on a GPU, peak allocated since the last reset."""
    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
