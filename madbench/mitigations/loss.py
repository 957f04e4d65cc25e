"""Mitigations that act on the training loss (the ``token_weights`` stage).

    madbench run --preset tiny 'loop.mitigations=[none,truncated_ce]' loop.regimes=[fully_synthetic]
    madbench run --preset tiny 'loop.mitigations=[truncated_ce]' mitigation_params.truncated_ce.gamma=0.8

``truncated_ce``'s defaults are the ForTIFAI code's (pedramaghazadeh/ForTIFAI, commit 79b79b5): gamma 0.99
(``src/run_pipeline.sh:15`` and ``:85``, ``LOSS_TYPE="clipped_${FOCAL_GAMMA}"``), the loss averaged over every
token, a truncated one counting as 0 (``src/losses.py:237-246``, ``loss.mean()``). One difference remains:
ForTIFAI applies the loss from stage 0 on (``src/plt_model.py:88-89``, every stage of ``run_pipeline.sh:105``);
madbench's generation 0 is shared by every chain of a seed and trains on the plain loss, so it truncates from
generation 1 on. The earlier default, gamma 0.3, was chosen on the tiny model on seeds 0-15, the seeds of
``madbench regress``'s reference (docs/mitigations.md), and is no longer the default.
"""

from __future__ import annotations

import torch

from madbench.errors import MadbenchError
from madbench.registry import did_you_mean

from madbench.mitigations import MITIGATIONS, Mitigation

AVERAGES = ("all", "kept")


@MITIGATIONS.register("truncated_ce")
class TruncatedCE(Mitigation):
    """Truncated cross-entropy: tokens the model already predicts with probability above gamma leave the loss (ForTIFAI 2025)."""

    name = "truncated_ce"
    paper = "Zibakhsh Shabgahi et al., ForTIFAI: Fending Off Recursive Training Induced Failure for AI Models, 2025"
    card = ("Truncated cross-entropy (TCE): while training generations >= 1, every token whose target the model "
            "currently predicts with probability p > gamma is masked out of the loss. Self-generated text is predicted "
            "confidently, so the loss dwells on the uncertain tail instead of sharpening the head. Records the share of "
            "tokens truncated. Params (ForTIFAI's defaults): gamma (confidence threshold in (0, 1], default 0.99; "
            "1 = keep every token), average ('all': the mean over every token, a truncated one counting as 0, as "
            "ForTIFAI's loss.mean(); 'kept': the mean over the tokens kept).")
    target_metric = "perplexity"
    # ForTIFAI src/run_pipeline.sh:15 (FOCAL_GAMMA="0.99") and src/losses.py:246 (loss.mean() over every token).
    # The old default 0.3 was tuned on seeds 0-15, the regression reference's own (docs/mitigations.md).
    params = {"gamma": 0.99, "average": "all"}

    def check(self):
        if self._fraction("gamma") < 1e-6:  # float32 holds no smaller threshold: log(gamma) would be -inf
            raise MadbenchError(f"mitigation_params.truncated_ce.gamma = {self.p['gamma']} is below 1e-6 "
                                "(a float32 probability threshold that small is 0); use a value in [1e-6, 1]")
        if self.p["average"] not in AVERAGES:
            raise MadbenchError(f"mitigation_params.truncated_ce.average must be one of {', '.join(AVERAGES)}, "
                                f"got {self.p['average']!r}{did_you_mean(str(self.p['average']), AVERAGES)}")

    def loss_over_all_tokens(self) -> bool:
        return self.p["average"] == "all"

    def token_weights(self, logits, targets, ctx):
        valid = targets != -100
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        truncated = (logp > torch.log(torch.tensor(float(self.p["gamma"])))) & valid
        return (~truncated).float(), {"tokens": int(valid.sum()), "truncated": int(truncated.sum())}

    def token_stats(self, totals):
        tokens = totals.get("tokens", 0)
        return {**totals, "truncated_share": round(totals.get("truncated", 0) / tokens, 4) if tokens else 0.0}
