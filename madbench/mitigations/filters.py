"""Score-based sample selection: keep the most plausible or the most surprising samples.

Both filters oversample by 1/keep_fraction and keep ``keep_fraction`` of what was
sampled, so the kept count still equals ``sampling.num_samples``.

    madbench run --preset tiny 'loop.mitigations=[none,verifier_filter,surprise_filter]' loop.regimes=[fully_synthetic]
"""

from __future__ import annotations

import math
import statistics

from madbench.errors import MadbenchError
from madbench.mitigations import MITIGATIONS, Mitigation

SCORERS = ("reference", "current", "ratio")  # ratio: NLL under generation 0 minus NLL under the sampler


def _summary(values):
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": None, "min": None, "max": None}
    return {"mean": round(statistics.fmean(finite), 4), "min": round(min(finite), 4), "max": round(max(finite), 4)}


class _ScoreFilter(Mitigation):
    lowest = True  # keep the lowest-NLL samples (True) or the highest (False)

    def check(self):
        self._fraction("keep_fraction")
        if self.p["scorer"] not in SCORERS:
            raise MadbenchError(f"mitigation_params.{self.name}.scorer must be one of {', '.join(SCORERS)}, got {self.p['scorer']!r}")

    def oversample(self) -> float:
        return 1.0 / float(self.p["keep_fraction"])

    def filter_samples(self, docs, ctx):
        if not docs:
            return docs, {"sampled": 0, "kept": 0, "dropped": 0}
        if ctx.score is None:
            raise MadbenchError(f"mitigation '{self.name}' needs a scoring model; run it through madbench run")
        texts = [d.text for d in docs]
        if self.p["scorer"] == "ratio":  # how much more surprising the text is to generation 0 than to its writer
            nll = [r - c for r, c in zip(ctx.score(texts, "reference"), ctx.score(texts, "current"))]
        else:
            nll = ctx.score(texts, self.p["scorer"])
        n_keep = max(1, int(round(len(docs) * float(self.p["keep_fraction"]))))
        # NaN/inf (empty texts) always sort last, i.e. are never preferred
        def key(i):
            v = nll[i]
            bad = not math.isfinite(v)
            return (bad, v if self.lowest else -v, i)

        order = sorted(range(len(docs)), key=key)
        keep = sorted(order[:n_keep])  # keep sampling order
        dropped = sorted(order[n_keep:])
        return [docs[i] for i in keep], {
            "scorer": self.p["scorer"], "sampled": len(docs), "kept": len(keep), "dropped": len(dropped),
            "nll_all": _summary(nll), "nll_kept": _summary([nll[i] for i in keep]),
            "nll_dropped": _summary([nll[i] for i in dropped]),
        }


@MITIGATIONS.register("verifier_filter")
class VerifierFilter(_ScoreFilter):
    """Keep the samples a verifier finds most plausible: lowest NLL/token under the generation-0 model (Feng et al. 2024)."""

    name = "verifier_filter"
    paper = "Feng et al., Beyond Model Collapse: Scaling Up with Synthesized Data Requires Verification, 2024"
    card = ("Samples num_samples/keep_fraction documents, scores each with a verifier and keeps the keep_fraction "
            "with the lowest score. Default scorer 'ratio': NLL per token under the generation-0 model (which saw only "
            "real data) minus NLL under the sampler, i.e. drop what the sampler likes far more than the real-data "
            "model does; 'reference' (plain generation-0 NLL) prefers repetitive text on the tiny model. "
            "Feng et al. 2024. Params: keep_fraction (0-1], scorer ('ratio', 'reference', 'current').")
    target_metric = "perplexity"
    params = {"keep_fraction": 0.5, "scorer": "ratio"}
    lowest = True


@MITIGATIONS.register("surprise_filter")
class SurpriseFilter(_ScoreFilter):
    """Keep the most surprising samples: highest NLL/token under the sampling model, to preserve the tails (Gambetta et al. 2025)."""

    name = "surprise_filter"
    paper = "Gambetta et al., Characterizing Model Collapse in Large Language Models Using Semantic Networks and Next-Token Probability, 2025"
    card = ("Samples num_samples/keep_fraction documents and keeps the keep_fraction with the highest NLL per token "
            "under the model that wrote them (default), so low-probability tails survive into the next mix. "
            "Gambetta et al. 2025. Params: keep_fraction (0-1], scorer ('current' or 'reference').")
    target_metric = "distinct_2"
    params = {"keep_fraction": 0.5, "scorer": "current"}
    lowest = False
