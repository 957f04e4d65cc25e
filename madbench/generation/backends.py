"""Sampling backends by name: ``sampling.backend=hf`` (madbench's own sampler) or ``vllm``.

    madbench list sampling_backends
    madbench run sampling.backend=vllm           # needs vLLM and a CUDA GPU

A backend is a :class:`SamplingBackend` in ``SAMPLING_BACKENDS``. Its ``generate`` is a lazy
``"module:function"`` with ``fn(model, encoded_prompts, cfg, seed, logits_processors) -> token ids``
(None: madbench's static-cache sampler in generation/sampling.py); ``check`` fails in one line,
before any training, when it cannot run here; ``beam_search`` and ``full_weights`` say what it supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from madbench.errors import MadbenchError
from madbench.registry import Lazy, Registry, did_you_mean


@dataclass(frozen=True)
class SamplingBackend:
    name: str
    description: str
    generate: Optional[str] = None  # "module:function" imported on first use; None: generation/sampling.py's sampler
    check: Optional[str] = None  # "module:function" that raises MadbenchError when the backend cannot run here
    beam_search: bool = True  # sampling.num_beams > 1 works
    full_weights: bool = True  # train.method=full models can be sampled

    @property
    def __doc__(self) -> str:  # type: ignore[override]  (madbench list prints it)
        return self.description

    def generate_fn(self) -> Optional[Callable[..., Any]]:
        return Lazy(self.generate).load() if self.generate else None

    def check_available(self) -> None:
        if self.check:
            Lazy(self.check).load()()


SAMPLING_BACKENDS = Registry("sampling backend")
SAMPLING_BACKENDS.add("hf", SamplingBackend("hf", "madbench's static-cache sampler on the in-memory model (any device)"))
SAMPLING_BACKENDS.add("vllm", SamplingBackend(
    "vllm", "vLLM serving the generation's LoRA adapter (CUDA GPU; pip install 'madbench[vllm]')",
    generate="madbench.generation.vllm_backend:generate_vllm", check="madbench.generation.vllm_backend:check_available",
    beam_search=False, full_weights=False))


def unknown(name: str) -> str:
    """The one line for a sampling.backend nobody registered."""
    names = SAMPLING_BACKENDS.registered()
    return f"unknown sampling.backend '{name}';{did_you_mean(name, names)} use {', '.join(names[:-1])} or {names[-1]}"


def backend(name: str) -> SamplingBackend:
    """The backend named by sampling.backend; an unknown name is one line with did-you-mean."""
    if name not in SAMPLING_BACKENDS:
        raise MadbenchError(unknown(name))
    return SAMPLING_BACKENDS.get(name)
