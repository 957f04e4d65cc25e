"""length_filter: keep only synthetic samples whose word count lies in a band.

A collapsing model's samples drift in length: some stop after a few words (an early
end-of-text), others loop until the token limit. Both kinds then dominate the next
training mix. This mitigation samples ``oversample`` times as many documents, drops
those outside ``[min_words, max_words]`` and keeps at most ``sampling.num_samples`` of
the rest, in sampling order::

    pip install -e examples/madbench-length-filter
    madbench list mitigations                      # length_filter  entry point madbench-length-filter 0.1.0
    madbench run --preset smoke 'loop.mitigations=[none,length_filter]' mitigation_params.length_filter.min_words=12
    madbench regress --plugin madbench_length_filter --mitigations length_filter --seeds 0 1 --generations 1
"""

from __future__ import annotations

from madbench.errors import MadbenchError
from madbench.mitigations import Mitigation

__version__ = "0.1.0"


def word_count(text: str) -> int:
    return len(text.split())


class LengthFilter(Mitigation):
    """Drop synthetic samples shorter than min_words or longer than max_words words (0 = no upper bound)."""

    name = "length_filter"
    paper = "example plug-in (madbench examples/madbench-length-filter)"
    card = ("Samples oversample x num_samples documents, drops those with fewer than min_words or more than max_words "
            "words (max_words 0 = no upper bound), and keeps at most num_samples of the rest in sampling order. "
            "Params: min_words, max_words, oversample.")
    target_metric = "perplexity"
    params = {"min_words": 12, "max_words": 0, "oversample": 1.25}

    def check(self) -> None:
        low, high, over = int(self.p["min_words"]), int(self.p["max_words"]), float(self.p["oversample"])
        if low < 0:
            raise MadbenchError(f"mitigation_params.length_filter.min_words must be >= 0, got {low}")
        if high and high < low:
            raise MadbenchError(f"mitigation_params.length_filter.max_words ({high}) must be 0 (no bound) or >= min_words ({low})")
        if over < 1.0:
            raise MadbenchError(f"mitigation_params.length_filter.oversample must be >= 1, got {over}")

    def oversample(self) -> float:
        return float(self.p["oversample"])

    def in_band(self, text: str) -> bool:
        n, high = word_count(text), int(self.p["max_words"])
        return n >= int(self.p["min_words"]) and (high == 0 or n <= high)

    def filter_samples(self, docs, ctx):
        budget = int(round(len(docs) / float(self.p["oversample"])))
        band = [d for d in docs if self.in_band(d.text)]
        kept = band[:budget]
        lengths = [word_count(d.text) for d in docs]
        return kept, {
            "sampled": len(docs), "in_band": len(band), "kept": len(kept), "dropped": len(docs) - len(kept),
            "too_short": sum(n < int(self.p["min_words"]) for n in lengths),
            "too_long": sum(bool(self.p["max_words"]) and n > int(self.p["max_words"]) for n in lengths),
            "mean_words_all": round(sum(lengths) / max(1, len(lengths)), 2),
            "mean_words_kept": round(sum(word_count(d.text) for d in kept) / max(1, len(kept)), 2),
        }
