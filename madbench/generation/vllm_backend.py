"""Sampling through vLLM on a GPU, the generation's adapter served as a LoRA request.

    pip install 'madbench[vllm]'
    madbench run sampling.backend=vllm          # needs a CUDA GPU

One vLLM engine per process holds the frozen base model (``enable_lora``, rank up
to ``lora.r``); each generation saves its adapter to a temporary folder and sends
every prompt with a ``LoRARequest`` for it, so switching generations costs an
adapter load, not a model load. Prompts go in as token ids (BOS + the prompt's
tokens, as in :mod:`madbench.generation.sampling`) and each prompt gets its own seed derived
from the generation's seed, so the samples do not depend on how vLLM batches them.
The engine takes ``MADBENCH_VLLM_GPU_MEMORY`` of the GPU (default 0.3) and leaves
the rest to training and evaluation on the same device.

What it cannot do, with a one-line error: beam search and mitigations that steer
decoding with transformers logits processors (``watermark_filter``): use
``sampling.backend=hf`` for those. Its random stream differs from the hf
backend's, so compare chains sampled by the same backend.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from typing import List

from madbench.errors import MadbenchError

_engines: dict = {}
_adapter_ids = itertools.count(1)


def check_available() -> None:
    """Fail with one line unless vLLM can run here (installed, CUDA present)."""
    import torch

    try:
        import vllm  # noqa: F401
    except ImportError:
        raise MadbenchError("sampling.backend=vllm needs vLLM: pip install 'madbench[vllm]' (or use sampling.backend=hf)")
    if not torch.cuda.is_available():
        raise MadbenchError("sampling.backend=vllm needs a CUDA GPU; on the CPU use sampling.backend=hf")


def base_path(model) -> str:
    """The folder the (peft-wrapped) model's base weights were loaded from."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    path = getattr(inner.config, "_name_or_path", None) or getattr(inner, "name_or_path", None)
    if not path:
        raise MadbenchError("sampling.backend=vllm needs a model loaded from a folder or hub name")
    return str(path)


def engine(path: str, dtype: str, max_lora_rank: int, seed: int):
    key = (path, dtype, max_lora_rank)
    if key not in _engines:
        from vllm import LLM

        rank = 8
        while rank < max_lora_rank:  # vLLM takes power-of-two ranks (8, 16, 32, ...)
            rank *= 2
        _engines[key] = LLM(model=path, dtype=dtype, enable_lora=True, max_lora_rank=rank, max_loras=1,
                            seed=seed, gpu_memory_utilization=float(os.environ.get("MADBENCH_VLLM_GPU_MEMORY", "0.3")))
    return _engines[key]


def sampling_params(s, seed: int, index: int):
    from vllm import SamplingParams

    return SamplingParams(n=1, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k if s.top_k > 0 else -1,
                          repetition_penalty=s.repetition_penalty, max_tokens=s.max_new_tokens,
                          min_tokens=s.min_new_tokens,
                          seed=(seed * 1_000_003 + index) % (2 ** 31))


def generate_vllm(model, encoded: List[List[int]], cfg, seed: int, logits_processors=()) -> List[List[int]]:
    """Token ids of prompt + continuation per encoded prompt (sampling.encode_prompts), in prompt order;
    :func:`madbench.generation.sampling.generate` decodes them as it does its own."""
    s = cfg.sampling
    if s.num_beams > 1:
        raise MadbenchError("sampling.backend=vllm samples; beam search (sampling.num_beams > 1) needs sampling.backend=hf")
    if list(logits_processors):
        raise MadbenchError("a mitigation of this chain steers decoding with logits processors (e.g. watermark_filter); "
                            "run it with sampling.backend=hf")
    check_available()
    import torch
    from vllm.lora.request import LoRARequest

    dtype = "bfloat16" if next(model.parameters()).dtype == torch.bfloat16 else "float32"
    llm = engine(base_path(model), dtype, max((cfg.lora.r, *cfg.loop.ecosystem.lora_ranks)), seed)  # ecosystem members may differ
    with tempfile.TemporaryDirectory(prefix="madbench-adapter-") as folder:
        lora = None
        if hasattr(model, "peft_config"):
            model.save_pretrained(folder)
            adapter_id = next(_adapter_ids)
            lora = LoRARequest(f"madbench-{adapter_id}", adapter_id, folder)
        requests = [{"prompt_token_ids": ids} for ids in encoded]
        params = [sampling_params(s, seed, i) for i in range(len(encoded))]
        results = llm.generate(requests, params, lora_request=lora, use_tqdm=False)
    return [ids + list(r.outputs[0].token_ids) for ids, r in zip(encoded, results)]
