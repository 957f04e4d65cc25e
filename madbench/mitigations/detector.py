"""Detector-guided resampling: up-weight the documents of a mix that look human (Drayson et al. 2025).

    madbench run --preset tiny 'loop.mitigations=[none,detector_resample]' loop.regimes=[fresh_data]
    madbench run --preset tiny 'loop.mitigations=[detector_resample]' mitigation_params.detector_resample.strength=2

When a generation's training mix is gathered, every document gets a zero-shot detector score from
the models madbench already has (no download, no labels):

  * ``binoculars`` (default): NLL / predictive entropy per token under the model that wrote the latest
    samples. Text sampled from a model has an expected NLL equal to that model's entropy, so its own
    text scores near 1 (below 1 with temperature or top-p < 1) and human text above 1. This is the
    one-model form of Binoculars (Hans et al. 2024: perplexity over cross-perplexity of two models).
  * ``ratio``: NLL under that model minus NLL under generation 0 (which saw only human data), negated:
    text the sampler likes far more than generation 0 does looks machine-written.

Higher = more human-like. The next mix is then drawn, with replacement, as many documents as the
mix had, with importance weights ``exp(strength * z)`` where ``z`` is the standardised score (the
paper resamples with weights from its detector's probability of human text). ``strength=0`` draws
uniformly. madbench knows which documents are synthetic, so it records the detector's AUROC on the
mix (1 = every synthetic document scores below every human one; ``None`` when the mix has only one
kind), the real share before and after, the distinct documents kept and the effective sample size.
"""

from __future__ import annotations

import math
import random
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


def importance_weights(human_scores: List[float], strength: float) -> List[float]:
    """exp(strength * z) of the standardised scores (1 for every document when they do not vary)."""
    finite = [s for s in human_scores if math.isfinite(s)]
    if len(finite) < 2:
        return [1.0] * len(human_scores)
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((s - mean) ** 2 for s in finite) / (len(finite) - 1))
    if std == 0:
        return [1.0] * len(human_scores)
    low = min(finite)  # an unscorable (empty) document counts as the least human-like seen
    logs = [strength * ((s if math.isfinite(s) else low) - mean) / std for s in human_scores]
    try:
        return [math.exp(x) for x in logs]
    except OverflowError:  # a large strength: the same relative weights, scaled so that the largest is 1
        top = max(logs)
        return [math.exp(x - top) for x in logs]


@MITIGATIONS.register("detector_resample")
class DetectorResample(Mitigation):
    """Resample the training mix with importance weights from a zero-shot machine-text detector (Drayson et al. 2025)."""

    name = "detector_resample"
    paper = "Drayson, Yilmaz and Lampos, Machine-generated text detection prevents language model collapse, EMNLP 2025"
    card = ("Scores every document of the training mix with a zero-shot detector built from madbench's own models "
            "(scorer 'binoculars': NLL / predictive entropy under the model that wrote the latest samples, about 1 "
            "for its own text and higher for human text; 'ratio': how much less that model is surprised than "
            "generation 0) and redraws the mix, with replacement and the same size, with weights exp(strength * z) of "
            "the standardised human-likeness z. Records the detector's AUROC on the mix, the real share before and "
            "after, distinct documents and the effective sample size. Drayson et al. 2025. "
            "Params: strength (>= 0; 0 = uniform), scorer ('binoculars', 'ratio').")
    target_metric = "perplexity"
    params = {"strength": 1.0, "scorer": "binoculars"}

    def check(self):
        try:
            strength = float(self.p["strength"])
        except (TypeError, ValueError):
            raise MadbenchError(f"mitigation_params.detector_resample.strength must be a number >= 0, got {self.p['strength']!r}") from None
        if not (math.isfinite(strength) and strength >= 0):
            raise MadbenchError(f"mitigation_params.detector_resample.strength must be a number >= 0, got {self.p['strength']!r}")
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
        weights = importance_weights(scores, float(self.p["strength"]))
        rng = random.Random(f"detector_resample:{ctx.seed}:{ctx.generation}")
        drawn = rng.choices(range(len(docs)), weights=weights, k=len(docs))
        out = [docs[i] for i in drawn]
        total = sum(weights)
        finite = [s for s in scores if math.isfinite(s)]

        def mean_of(kind: bool):
            vals = [s for s, syn in zip(scores, synthetic) if syn == kind and math.isfinite(s)]
            return round(sum(vals) / len(vals), 4) if vals else None

        score_auroc = auroc([-(s if math.isfinite(s) else min(finite, default=0.0)) for s in scores], synthetic)
        return out, {
            "scorer": self.p["scorer"], "mix_docs": len(docs), "distinct_docs": len(set(drawn)),
            "real_share_before": round(1 - sum(synthetic) / len(docs), 4),
            "real_share_after": round(sum(1 for i in drawn if not synthetic[i]) / len(drawn), 4),
            "auroc": None if score_auroc is None else round(score_auroc, 4),
            "mean_score_human": mean_of(False), "mean_score_synthetic": mean_of(True),
            "effective_sample_share": round(total * total / sum(w * w for w in weights) / len(docs), 4),
        }
