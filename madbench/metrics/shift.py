"""Distribution shift of a generation's samples from the held-out human documents.

Both metrics compare all-MiniLM-L6-v2 embeddings of the samples (P) with those of the
held-out human documents (Q, embedded once per process):

- frechet_embedding_distance: the Fréchet (FID-style) distance between Gaussians fitted
  to P and Q, |mu_p - mu_q|^2 + tr(S_p + S_q - 2 (S_p S_q)^1/2), with the matrix-root
  trace taken as a nuclear norm of the centred data (exact, and stable for the
  rank-deficient covariances of a few dozen samples in 384 dimensions). With few
  samples the value is biased upwards; compare it between generations of the same
  sample count.
- mauve (Pillutla et al. 2021, package mauve-text): the area under the divergence
  curve of P and Q quantised by k-means into few buckets (min(n_p, n_q) / 10, at
  least 2), so it is coarse with tens of samples; 1 = indistinguishable.

Exercise with ``pytest tests/test_metrics.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Optional

import numpy as np

from madbench.metrics import METRICS
from madbench.metrics.embeddings import human_embeddings, sample_embeddings

MAUVE_SEED = 25


def frechet_distance(p: np.ndarray, q: np.ndarray) -> Optional[float]:
    """Fréchet distance between Gaussian fits (mean, unbiased covariance) of the rows of p and q.

    With centred data A_p, A_q: tr S_p = |A_p|_F^2 / (n_p - 1), and tr (S_p S_q)^1/2 is the
    nuclear norm of A_p A_q^T over sqrt((n_p - 1)(n_q - 1)), so no d x d matrix root is needed.
    """
    if len(p) < 2 or len(q) < 2:
        return None
    a_p, a_q = p - p.mean(0), q - q.mean(0)
    c_p, c_q = len(p) - 1, len(q) - 1
    cross = np.linalg.svd(a_p @ a_q.T, compute_uv=False).sum() / np.sqrt(c_p * c_q)
    value = ((p.mean(0) - q.mean(0)) ** 2).sum() + (a_p ** 2).sum() / c_p + (a_q ** 2).sum() / c_q - 2.0 * cross
    return max(float(value), 0.0)


def mauve_score(p: np.ndarray, q: np.ndarray, num_buckets: Optional[int] = None, seed: int = MAUVE_SEED) -> Optional[float]:
    """MAUVE of feature sets p (model) and q (human), with a small k-means quantisation (k-means ``seed``)."""
    if len(p) < 2 or len(q) < 2:
        return None
    import faiss
    import mauve

    buckets = num_buckets or max(2, int(round(min(len(p), len(q)) / 10)))
    threads = faiss.omp_get_max_threads()
    # One faiss thread: k-means on a few hundred points gains nothing from OpenMP, and its
    # spinning threads cost 17x the CPU time on a busy 2-core machine (measured).
    faiss.omp_set_num_threads(1)
    try:
        with _quiet_native_stderr():
            out = mauve.compute_mauve(p_features=p.astype(np.float32), q_features=q.astype(np.float32),
                                      num_buckets=buckets, kmeans_num_redo=2, kmeans_max_iter=100,
                                      seed=seed, verbose=False)
    finally:
        faiss.omp_set_num_threads(threads)
    return float(out.mauve)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence faiss's C-level "please provide at least 39 x k training points" warning,
    printed for every generation since a few dozen samples are always below that."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@METRICS.register("frechet_embedding_distance", higher_is_better=False, needs="human", value_range=(0.0, None))
def frechet_embedding_distance(ctx) -> Optional[float]:
    """Fréchet distance between the samples' and the human documents' embedding distributions (FID-style)."""
    return frechet_distance(sample_embeddings(ctx), human_embeddings(ctx.human))


@METRICS.register("mauve", higher_is_better=True, needs="human", value_range=(0.0, 1.0))
def mauve_metric(ctx) -> Optional[float]:
    """MAUVE (0-1) between the samples' and the human documents' embeddings; 1 = indistinguishable."""
    return mauve_score(sample_embeddings(ctx), human_embeddings(ctx.human))
