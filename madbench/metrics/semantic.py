"""Semantic diversity of a generation's samples, from all-MiniLM-L6-v2 embeddings.

- pairwise_cosine_distance: mean of 1 - cos(e_i, e_j) over all pairs i < j.
- vendi_score (Friedman & Dieng 2023): exp of the Shannon entropy of the eigenvalues
  of K/n, K the cosine-similarity matrix; the "effective number of distinct samples",
  1 when all samples are the same and n when they are mutually orthogonal.

Exercise with ``pytest tests/test_metrics.py``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from madbench.metrics import METRICS
from madbench.metrics.embeddings import sample_embeddings


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def mean_pairwise_cosine_distance(x: np.ndarray) -> Optional[float]:
    n = len(x)
    if n < 2:
        return None
    sim = _unit(x) @ _unit(x).T
    return float((1.0 - sim[np.triu_indices(n, k=1)]).mean())


def vendi_score(x: np.ndarray) -> Optional[float]:
    n = len(x)
    if n == 0:
        return None
    k = _unit(x) @ _unit(x).T
    eig = np.clip(np.linalg.eigvalsh(k / n), 0.0, None)
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


@METRICS.register("pairwise_cosine_distance", higher_is_better=True, needs="samples", value_range=(0.0, 2.0))
def pairwise_cosine_distance(ctx) -> Optional[float]:
    """Mean pairwise cosine distance (1 - cosine similarity) of the samples' sentence embeddings."""
    return mean_pairwise_cosine_distance(sample_embeddings(ctx))


@METRICS.register("vendi_score", higher_is_better=True, needs="samples", value_range=(1.0, None))
def vendi(ctx) -> Optional[float]:
    """Vendi score of the samples' embeddings: effective number of distinct samples (1 to n)."""
    return vendi_score(sample_embeddings(ctx))
