"""Mitigations that change what the training mix is made of: real data and accumulation.

    madbench run --preset tiny 'loop.mitigations=[none,mix_real,accumulate]' loop.regimes=[fully_synthetic]
"""

from __future__ import annotations

import random

from madbench.mitigations import MITIGATIONS, Mitigation


def _is_real(doc) -> bool:
    return doc.is_human  # provenance is data (madbench.data.corpus.Doc.source), never read from the id


@MITIGATIONS.register("mix_real")
class MixReal(Mitigation):
    """Replace a fraction of every mix with original human documents (Shumailov et al. 2024 kept 10%)."""

    name = "mix_real"
    paper = "Shumailov et al., AI models collapse when trained on recursively generated data, Nature 2024"
    card = ("Keeps `fraction` of each generation's training mix as original human data drawn at random from the "
            "training pool (the mix keeps its size). Shumailov et al., Nature 2024 kept 10%. "
            "Params: fraction (share of the mix that is real, 0 = off).")
    target_metric = "perplexity"
    params = {"fraction": 0.1}

    def check(self):
        self._fraction("fraction", low_open=False)

    def transform_mix(self, docs, ctx):
        k = int(round(self.p["fraction"] * len(docs)))
        rng = random.Random(f"mix_real:{ctx.seed}:{ctx.generation}")
        real = rng.sample(ctx.pool, min(k, len(ctx.pool)))
        kept = docs[: len(docs) - len(real)]
        return kept + real, {"real_added": len(real), "synthetic_removed": len(docs) - len(kept),
                             "mix_docs": len(kept) + len(real),
                             "real_share": round(sum(map(_is_real, kept + real)) / max(1, len(kept) + len(real)), 4)}


@MITIGATIONS.register("accumulate")
class Accumulate(Mitigation):
    """Accumulate data instead of replacing it: the real generation-0 set plus every earlier generation's samples (Gerstgrasser et al. 2024)."""

    name = "accumulate"
    paper = "Gerstgrasser et al., Is Model Collapse Inevitable? Breaking the Curse of Recursion by Accumulating Real and Synthetic Data, 2024"
    card = ("Trains every generation on the union of the real generation-0 documents and all synthetic samples kept "
            "so far (plus whatever the regime chose), so data grows linearly instead of being replaced. "
            "Gerstgrasser et al. 2024. Params: keep_real (add the generation-0 real set, default true).")
    target_metric = "perplexity"
    params = {"keep_real": True}

    def transform_mix(self, docs, ctx):
        history = ctx.history
        out, seen = [], set()
        real0 = ctx.pool[: int(ctx.train_docs)] if self.p["keep_real"] else []
        for d in list(real0) + [d for g in sorted(history) for d in history[g]] + list(docs):
            if d.id not in seen:
                seen.add(d.id)
                out.append(d)
        return out, {"regime_docs": len(docs), "mix_docs": len(out), "real_docs": sum(map(_is_real, out)),
                     "synthetic_docs": sum(1 for d in out if not _is_real(d)), "generations_accumulated": len(history)}
