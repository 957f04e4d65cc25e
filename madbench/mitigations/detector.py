"""Detector-guided resampling: up-weight the documents of a mix that look human (Drayson et al. 2025).

    madbench run --preset tiny 'loop.mitigations=[none,detector_resample]' loop.regimes=[fresh_data]
    madbench run --preset tiny 'loop.mitigations=[detector_resample]' mitigation_params.detector_resample.bias=2

When a generation's training mix is gathered, every document gets a zero-shot detector score from
the models madbench already has (no download, no labels):

  * ``binoculars`` (default): NLL / predictive entropy per token under the model that wrote the latest
    samples. Text sampled from a model has an expected NLL equal to that model's entropy, so its own
    text scores near 1 (below 1 with temperature or top-p < 1) and human text above 1. This is the
    one-model form of Binoculars (Hans et al. 2024: perplexity over cross-perplexity of two models).
  * ``ratio``: NLL under that model minus NLL under generation 0 (which saw only human data), negated:
    text the sampler likes far more than generation 0 does looks machine-written.

Higher = more human-like. The next mix is then drawn as Drayson et al. draw it
(``src/utils/data_selection_strategy.py:3-17`` and ``config/data_selection/importance_sampling.yaml:1-4`` of
GeorgeDrayson/model_collapse): every document is repeated ``max_copies`` times (3), and
round(``upsample`` x N) (1.5 x N) of those copies are drawn *without replacement*, with weights
P(human) ** ``bias`` (10) -- so the mix grows by half, and no document appears more than 3 times.

Substitution: their P(human) is 1 - the confidence of a trained classifier (ModernBERT fine-tuned on MAGE);
madbench has no trained detector offline, so P(human) is the logistic of the standardised zero-shot score,
sigmoid(z): monotone in the score, 0.5 at the mix's mean, but not a calibrated probability. madbench knows
which documents are synthetic, so it records the detector's AUROC on the mix (1 = every synthetic document
scores below every human one; ``None`` when the mix has only one kind), the real share before and after,
the distinct documents kept, the largest number of copies of one document and the effective sample size.
The score is of ``doc.text``: a sample's continuation once samples are continuation-only, as in the paper
(their detector reads the generated tokens only, ``src/generate.py:196-199``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import List, Optional

from madbench.errors import MadbenchError
from madbench.mitigations import MITIGATIONS, Mitigation

SCORERS = ("binoculars", "ratio")


def auroc(machine_scores: List[float], is_synthetic: List[bool]) -> Optional[float]:
    """P(a synthetic document scores higher than a human one), ties counted half; None without both kinds."""
    from scipy.stats import rankdata

    n_pos = sum(is_synthetic)
    n_neg = len(is_synthetic) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(machine_scores)
    rank_sum = sum(r for r, pos in zip(ranks, is_synthetic) if pos)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def human_probability(human_scores: List[float]) -> List[float]:
    """sigmoid(z) of the standardised scores: madbench's stand-in for a trained detector's P(human) (0.5 when they do not vary)."""
    finite = [x for x in human_scores if math.isfinite(x)]
    if len(finite) < 2:
        return [0.5] * len(human_scores)
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((x - mean) ** 2 for x in finite) / (len(finite) - 1))
    if std == 0:
        return [0.5] * len(human_scores)
    low = min(finite)  # an unscorable (empty) document counts as the least human-like seen
    return [1 / (1 + math.exp(-((x if math.isfinite(x) else low) - mean) / std)) for x in human_scores]


def importance_weights(human_scores: List[float], bias: float) -> List[float]:
    """P(human) ** bias (Drayson et al.'s ``(1 - cls_confidence) ** bias_factor``), scaled so that the largest is 1.

    Computed in logs, so a large bias neither overflows nor rounds every weight to 0; a weight that underflows
    is floored at 1e-300, so a draw without replacement can still fill its quota from the least likely documents.
    """
    logs = [bias * math.log(p) if p > 0 else -math.inf for p in human_probability(human_scores)]
    top = max(logs, default=0.0)
    return [max(math.exp(x - top), 1e-300) for x in logs]


def drayson_draw(weights: List[float], upsample: float, max_copies: int, seed: str) -> List[int]:
    """Indices of round(upsample * N) draws without replacement from every index repeated ``max_copies`` times,
    with probability proportional to ``weights`` (``data_selection_strategy.py:12-15`` of Drayson et al.)."""
    import hashlib

    import numpy as np

    n = len(weights)
    expanded = np.repeat(np.arange(n), max_copies)
    p = np.asarray(weights, dtype=float)[expanded]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    drawn = rng.choice(expanded, size=round(n * upsample), replace=False, p=p / p.sum())
    return [int(i) for i in drawn]


@MITIGATIONS.register("detector_resample")
class DetectorResample(Mitigation):
    """Drayson et al.'s importance-sampling draw of the training mix, weighted by a zero-shot machine-text detector.

    The draw and its defaults are the paper's (upsample 1.5, at most 3 copies, bias 10, without replacement);
    the detector is a documented substitution: a one-model zero-shot score from madbench's own models, mapped to
    P(human) by a logistic of its standardised value, in place of their trained ModernBERT classifier.
    """

    name = "detector_resample"
    paper = "Drayson, Yilmaz and Lampos, Machine-generated text detection prevents language model collapse, EMNLP 2025"
    card = ("Drayson et al.'s draw: every document of the training mix gets a zero-shot detector score from madbench's "
            "own models (scorer 'binoculars': NLL / predictive entropy under the model that wrote the latest samples, "
            "about 1 for its own text and higher for human text; 'ratio': how much less that model is surprised than "
            "generation 0), P(human) = sigmoid of the standardised score (a stand-in for their trained classifier), "
            "and round(upsample x N) documents are drawn without replacement from max_copies copies of each, with "
            "weights P(human) ** bias. Records the detector's AUROC on the mix, the real share before and after, "
            "distinct documents, the most copies of one and the effective sample size. Drayson et al. 2025. "
            "Params (the paper's defaults): upsample (1.5, in (0, max_copies]), max_copies (3, >= 1), bias (10, >= 0; "
            "0 = uniform), scorer ('binoculars', 'ratio').")
    target_metric = "perplexity"
    # GeorgeDrayson/model_collapse config/data_selection/importance_sampling.yaml:2-4
    params = {"upsample": 1.5, "max_copies": 3, "bias": 10.0, "scorer": "binoculars"}

    def _number(self, key: str, low: float, kind=float) -> float:
        try:
            value = kind(self.p[key])
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value) or value < low or (kind is int and value != self.p[key]):
            raise MadbenchError(f"mitigation_params.detector_resample.{key} must be {'an integer' if kind is int else 'a number'} "
                                f">= {low:g}, got {self.p[key]!r}")
        return value

    def check(self):
        copies = self._number("max_copies", 1, int)
        upsample = self._number("upsample", 0.0)
        self._number("bias", 0.0)
        if not 0 < upsample <= copies:
            raise MadbenchError(f"mitigation_params.detector_resample.upsample = {self.p['upsample']} must be in "
                                f"(0, max_copies = {copies}]: a draw without replacement takes at most max_copies copies of each document")
        if self.p["scorer"] not in SCORERS:
            raise MadbenchError(f"mitigation_params.detector_resample.scorer must be one of {', '.join(SCORERS)}, got {self.p['scorer']!r}")

    def human_likeness(self, texts: List[str], ctx) -> List[float]:
        needed = ctx.score if self.p["scorer"] == "ratio" else ctx.score_entropy
        if needed is None:
            raise MadbenchError("mitigation 'detector_resample' needs the scoring models; run it through madbench run")
        if self.p["scorer"] == "ratio":
            return [c - r for c, r in zip(ctx.score(texts, "current"), ctx.score(texts, "reference"))]
        return [nll / ent if ent > 0 else float("inf") for nll, ent in ctx.score_entropy(texts, "current")]

    def transform_mix(self, docs, ctx):
        if not docs:
            return docs, {}
        scores = self.human_likeness([d.text for d in docs], ctx)
        synthetic = [not d.is_human for d in docs]
        weights = importance_weights(scores, float(self.p["bias"]))
        drawn = drayson_draw(weights, float(self.p["upsample"]), int(self.p["max_copies"]),
                             f"detector_resample:{ctx.seed}:{ctx.generation}")
        out = [docs[i] for i in drawn]
        total = sum(weights)
        finite = [s for s in scores if math.isfinite(s)]

        def mean_of(kind: bool):
            vals = [s for s, syn in zip(scores, synthetic) if syn == kind and math.isfinite(s)]
            return round(sum(vals) / len(vals), 4) if vals else None

        score_auroc = auroc([-(s if math.isfinite(s) else min(finite, default=0.0)) for s in scores], synthetic)
        return out, {
            "scorer": self.p["scorer"], "mix_docs": len(docs), "drawn_docs": len(drawn), "distinct_docs": len(set(drawn)),
            "max_copies_drawn": max(Counter(drawn).values()),
            "real_share_before": round(1 - sum(synthetic) / len(docs), 4),
            "real_share_after": round(sum(1 for i in drawn if not synthetic[i]) / len(drawn), 4),
            "auroc": None if score_auroc is None else round(score_auroc, 4),
            "mean_score_human": mean_of(False), "mean_score_synthetic": mean_of(True),
            "effective_sample_share": round(total * total / sum(w * w for w in weights) / len(docs), 4),
        }
