"""``uniform_resample``: the compute-matched control of ``detector_resample`` (the same draw, no detector).

    madbench run --preset tiny 'loop.mitigations=[none,detector_resample,uniform_resample]' loop.regimes=[fresh_data]

Drayson et al.'s draw (:func:`madbench.mitigations.detector.drayson_draw`) with every weight equal: each document
of the mix is copied ``max_copies`` (3) times and round(``upsample`` x N) (1.5 N) copies are drawn without
replacement, uniformly. The mix grows by the same half, no document appears more than ``max_copies`` times, and the
training sees exactly the tokens-per-step budget that ``detector_resample`` gives it; the only thing missing is the
detector. A resampling result is read against both arms: ``none`` (no selection) says whether the resampled mix helps
at all, ``uniform_resample`` how much of that is the detector and how much is the upsampling and its repeats.
"""

from __future__ import annotations

from collections import Counter

from madbench.errors import MadbenchError
from madbench.mitigations import MITIGATIONS, Mitigation
from madbench.mitigations.detector import drayson_draw


@MITIGATIONS.register("uniform_resample")
class UniformResample(Mitigation):
    """Drayson et al.'s upsampled draw without replacement, capped at ``max_copies``, with uniform weights."""

    name = "uniform_resample"
    paper = "control arm for Drayson, Yilmaz and Lampos, EMNLP 2025 (their draw, src/utils/data_selection_strategy.py:3-17)"
    card = ("The control of detector_resample: the same draw (every document copied max_copies times, round(upsample x N) "
            "copies drawn without replacement) with uniform weights, so the mix has detector_resample's size and copy cap "
            "but no detector. Compare detector_resample against it and against none. Records the real share before and "
            "after, the distinct documents and the most copies of one. Params: upsample (1.5, in (0, max_copies]), "
            "max_copies (3, an integer >= 1).")
    target_metric = "perplexity"
    params = {"upsample": 1.5, "max_copies": 3}  # detector_resample's defaults (importance_sampling.yaml:2-4)

    def check(self):
        copies = self.p["max_copies"]
        try:
            upsample = float(self.p["upsample"])
        except (TypeError, ValueError):
            upsample = None
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise MadbenchError(f"mitigation_params.uniform_resample.max_copies must be an integer >= 1, got {copies!r}")
        if upsample is None or not 0 < upsample <= copies:
            raise MadbenchError(f"mitigation_params.uniform_resample.upsample = {self.p['upsample']!r} must be a number in "
                                f"(0, max_copies = {copies}]: a draw without replacement takes at most max_copies copies of each")

    def transform_mix(self, docs, ctx):
        if not docs:
            return docs, {}
        drawn = drayson_draw([1.0] * len(docs), float(self.p["upsample"]), int(self.p["max_copies"]),
                             f"uniform_resample:{ctx.seed}:{ctx.generation}")
        human = [d.is_human for d in docs]
        return [docs[i] for i in drawn], {
            "mix_docs": len(docs), "drawn_docs": len(drawn), "distinct_docs": len(set(drawn)),
            "max_copies_drawn": max(Counter(drawn).values()),
            "real_share_before": round(sum(human) / len(docs), 4),
            "real_share_after": round(sum(1 for i in drawn if human[i]) / len(drawn), 4),
        }
