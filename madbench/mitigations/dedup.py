"""Exact and near-duplicate removal of synthetic samples (MinHash LSH via ``datasketch``).

    madbench run --preset tiny 'loop.mitigations=[none,dedup]' mitigation_params.dedup.threshold=0.5
"""

from __future__ import annotations

import hashlib
from typing import List, Set

from madbench.metrics.lexical import words
from madbench.mitigations import MITIGATIONS, Mitigation


def shingles(text: str, n: int) -> Set[str]:
    """Lower-cased word n-grams of ``text`` (the whole text when it is shorter than n words)."""
    toks = words(text)
    if len(toks) < n:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def minhash(text: str, n: int, num_perm: int):
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=1)
    for s in shingles(text, n):
        m.update(s.encode("utf-8"))
    return m


def near_duplicates(texts: List[str], threshold: float, n: int = 3, num_perm: int = 128) -> List[str]:
    """Label each text 'keep', 'exact' (same normalised text as an earlier one) or 'near' (estimated
    Jaccard similarity of word n-gram shingles >= threshold with an earlier kept text)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    seen_exact, sigs, labels = set(), {}, []
    for i, text in enumerate(texts):
        digest = hashlib.sha1(" ".join(words(text)).encode("utf-8")).hexdigest()
        if digest in seen_exact:
            labels.append("exact")
            continue
        seen_exact.add(digest)
        m = minhash(text, n, num_perm)
        # LSH gives candidates; confirm with the MinHash estimate so the threshold is what decides
        if any(m.jaccard(sigs[k]) >= threshold for k in lsh.query(m)):
            labels.append("near")
            continue
        lsh.insert(str(i), m)
        sigs[str(i)] = m
        labels.append("keep")
    return labels


@MITIGATIONS.register("dedup")
class Dedup(Mitigation):
    """Drop exact and near-duplicate samples (MinHash over word shingles, Lee et al. 2022) before they enter the next mix."""

    name = "dedup"
    paper = "Lee et al., Deduplicating Training Data Makes Language Models Better, ACL 2022 (MinHash: Broder 1997)"
    card = ("Samples `oversample` times num_samples documents, drops exact duplicates (same normalised words) and "
            "near-duplicates (MinHash-estimated Jaccard similarity of word `shingle`-grams >= `threshold` with an "
            "earlier sample), then keeps at most num_samples of the rest. Params: threshold, shingle, num_perm, oversample.")
    target_metric = "distinct_2"
    params = {"threshold": 0.5, "shingle": 3, "num_perm": 128, "oversample": 1.25}

    def check(self):
        from madbench.errors import MadbenchError

        if not 0.0 < float(self.p["threshold"]) <= 1.0:
            raise MadbenchError(f"mitigation_params.dedup.threshold must be in (0, 1], got {self.p['threshold']}")
        if float(self.p["oversample"]) < 1.0 or int(self.p["shingle"]) < 1 or int(self.p["num_perm"]) < 16:
            raise MadbenchError("mitigation_params.dedup needs oversample >= 1, shingle >= 1 and num_perm >= 16")

    def oversample(self) -> float:
        return float(self.p["oversample"])

    def filter_samples(self, docs, ctx):
        labels = near_duplicates([d.text for d in docs], float(self.p["threshold"]), int(self.p["shingle"]),
                                 int(self.p["num_perm"]))
        unique = [d for d, lab in zip(docs, labels) if lab == "keep"]
        budget = int(round(len(docs) / float(self.p["oversample"])))
        kept = unique[:budget]
        return kept, {"sampled": len(docs), "exact_duplicates": labels.count("exact"),
                      "near_duplicates": labels.count("near"), "unique": len(unique), "kept": len(kept),
                      "dropped": len(docs) - len(kept), "surplus_dropped": len(unique) - len(kept),
                      "duplicate_rate": round((len(docs) - len(unique)) / max(1, len(docs)), 4)}
