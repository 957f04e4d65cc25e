"""Green-list watermarking at sampling time and provenance-aware filtering of the next mix.

Kirchenbauer et al. (2023), "A Watermark for Large Language Models": before each
token, the vocabulary is split by a PRNG seeded with (key, previous token) into a
green list of gamma*|V| tokens whose logits get +delta. A detector that knows the
key counts green tokens and computes z = (green - gamma*T) / sqrt(T*gamma*(1-gamma)).

Here a ``watermark_fraction`` of the samples (chosen by a keyed hash of the
text's first words, so the choice is reproducible from the text alone; a sample's
text is its generated continuation, never its prompt) are watermarked. A row is
decided as soon as its first generated words are final, after a few free tokens,
with a real prompt or without one; a sample too short to have them is never
watermarked. This is a model of a web where only some generators watermark. When the
next generation's mix is gathered, documents with z >= ``z_threshold`` are
dropped (``action=drop``) or replaced by human documents from the pool
(``action=replace``: a scraper that keeps its budget with verifiable human text),
and the detector's precision and recall on the mix are recorded.

    madbench run --preset tiny 'loop.mitigations=[none,watermark_filter]' mitigation_params.watermark_filter.delta=4
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Dict, List

import torch

from madbench.errors import MadbenchError
from madbench.mitigations import MITIGATIONS, Mitigation

ACTIONS = ("replace", "drop")


class GreenList:
    """Seeded green lists, one per previous token (cached): gamma*vocab token ids get the bias."""

    def __init__(self, key: int, gamma: float, vocab: int):
        self.key, self.gamma, self.vocab = int(key), float(gamma), int(vocab)
        self.size = max(1, int(self.gamma * self.vocab))
        self._cache: Dict[int, torch.Tensor] = {}

    def mask(self, prev: int) -> torch.Tensor:
        prev = int(prev)
        if prev not in self._cache:
            gen = torch.Generator().manual_seed((self.key * 1_000_003 + prev) % (2**62))
            m = torch.zeros(self.vocab, dtype=torch.bool)
            m[torch.randperm(self.vocab, generator=gen)[: self.size]] = True
            self._cache[prev] = m
        return self._cache[prev]

    def z_score(self, ids: List[int]) -> tuple:
        """(z, green count, scored tokens) of a token sequence; z is 0 for fewer than 2 tokens."""
        scored = len(ids) - 1
        if scored < 1:
            return 0.0, 0, 0
        green = sum(bool(self.mask(ids[i - 1])[ids[i]]) for i in range(1, len(ids)) if ids[i] < self.vocab)
        z = (green - self.gamma * scored) / math.sqrt(scored * self.gamma * (1 - self.gamma))
        return z, green, scored


HEAD_WORDS = 4  # the decision hashes this many leading words


def chosen(text: str, key: int, fraction: float, words: int = HEAD_WORDS) -> bool:
    """Whether a sample whose text is ``text`` is watermarked: a keyed hash of its first words.

    Texts of ``words`` words or fewer are not: the sampler decides a row only once a word
    follows the first ``words`` (so they cannot change), and a row that stops earlier is never marked."""
    head = text.split()
    if len(head) <= words or fraction <= 0.0:
        return False
    if fraction >= 1.0:
        return True
    h = int(hashlib.sha256(f"{key}:{' '.join(head[:words])}".encode()).hexdigest()[:12], 16)
    return h / float(16**12) < fraction


class WatermarkProcessor:
    """A transformers LogitsProcessor: +delta on the green list of the rows chosen for watermarking."""

    def __init__(self, green: GreenList, delta: float, key: int, fraction: float, tokenizer):
        self.green, self.delta, self.key, self.fraction, self.tokenizer = green, float(delta), key, fraction, tokenizer
        self._prefix = None  # the current batch's prompt ids (detects a new generate() call)
        self._rows: List[int] = []  # rows decided and watermarked
        self._pending: Dict[int, int] = {}  # undecided row -> index of its first generated token
        self.watermarked_rows = 0

    def _new_batch(self, input_ids: torch.Tensor) -> bool:
        p = self._prefix
        return p is None or p.shape[0] != input_ids.shape[0] or input_ids.shape[1] < p.shape[1] or \
            not torch.equal(input_ids[:, : p.shape[1]], p)

    def _start(self, input_ids: torch.Tensor) -> None:
        self._prefix = input_ids.clone()
        # every row is decided on its first generated words (the sample's text), never on its prompt
        self._rows, self._pending = [], {row: input_ids.shape[1] for row in range(input_ids.shape[0])}

    def _decide(self, input_ids: torch.Tensor) -> None:
        """Decide every row whose first HEAD_WORDS words are final (a further word has begun)."""
        width = self._prefix.shape[1]
        ends = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        for row, start in list(self._pending.items()):
            ids = input_ids[row].tolist()
            if len(ids) > width and ids[-1] in ends:  # finished before its first words were complete
                del self._pending[row]
                continue
            words = self.tokenizer.decode(ids[start:], skip_special_tokens=True).split()
            if len(words) > HEAD_WORDS:
                del self._pending[row]
                if chosen(" ".join(words), self.key, self.fraction):
                    self._rows.append(row)
                    self.watermarked_rows += 1

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._new_batch(input_ids):
            self._start(input_ids)
        if self._pending:
            self._decide(input_ids)
        if not self._rows:
            return scores
        prev = input_ids[self._rows, -1].tolist()
        bias = torch.stack([self.green.mask(p) for p in prev]).to(scores.device)
        width = min(bias.shape[1], scores.shape[1])
        scores = scores.clone()
        scores[self._rows, :width] += self.delta * bias[:, :width].to(scores.dtype)
        return scores


@MITIGATIONS.register("watermark_filter")
class WatermarkFilter(Mitigation):
    """Watermark a fraction of samples (Kirchenbauer et al. 2023) and drop or replace what the detector finds in the next mix."""

    name = "watermark_filter"
    paper = "Kirchenbauer et al., A Watermark for Large Language Models, ICML 2023"
    card = ("Samples watermark_fraction of the documents with a green-list watermark (gamma of the vocabulary, "
            "seeded by key and the previous token, gets +delta). When the next mix is gathered, each document's "
            "z-score is computed and those with z >= z_threshold are replaced by human pool documents (action=replace) "
            "or dropped (action=drop); detector precision/recall on the mix are recorded. Kirchenbauer et al. 2023. "
            "Params: gamma, delta, z_threshold, watermark_fraction, key, action.")
    target_metric = "perplexity"
    params = {"gamma": 0.25, "delta": 4.0, "z_threshold": 4.0, "watermark_fraction": 0.5, "key": 15485863,
              "action": "replace"}

    def check(self):
        self._fraction("gamma")
        self._fraction("watermark_fraction", low_open=False)
        if self.p["action"] not in ACTIONS:
            raise MadbenchError(f"mitigation_params.watermark_filter.action must be one of {', '.join(ACTIONS)}, got {self.p['action']!r}")
        if float(self.p["gamma"]) >= 1.0:
            raise MadbenchError("mitigation_params.watermark_filter.gamma must be below 1")
        if not abs(float(self.p["delta"])) <= 100.0:  # NaN and inf fail too: logits + inf are NaN
            raise MadbenchError(f"mitigation_params.watermark_filter.delta = {self.p['delta']} must be a number in "
                                "[-100, 100] (a logit bias; 2-10 is usual)")
        if not math.isfinite(float(self.p["z_threshold"])):
            raise MadbenchError(f"mitigation_params.watermark_filter.z_threshold = {self.p['z_threshold']} must be a finite number")

    def green(self, tokenizer) -> GreenList:
        return GreenList(self.p["key"], self.p["gamma"], len(tokenizer))

    def detect(self, texts: List[str], tokenizer) -> List[float]:
        """z-score of each text under this mitigation's key."""
        green = self.green(tokenizer)
        return [green.z_score(tokenizer(t, add_special_tokens=False)["input_ids"])[0] for t in texts]

    def logits_processors(self, ctx):
        if float(self.p["watermark_fraction"]) <= 0:
            return []
        return [WatermarkProcessor(self.green(ctx.tokenizer), self.p["delta"], self.p["key"],
                                   float(self.p["watermark_fraction"]), ctx.tokenizer)]

    def filter_samples(self, docs, ctx):
        """Nothing is dropped at sampling time; record how many samples carry the watermark and their z."""
        marked = [chosen(d.text, self.p["key"], float(self.p["watermark_fraction"])) for d in docs]
        z = self.detect([d.text for d in docs], ctx.tokenizer)
        zw = [v for v, m in zip(z, marked) if m]
        zu = [v for v, m in zip(z, marked) if not m]
        return docs, {"watermarked": sum(marked), "unwatermarked": len(docs) - sum(marked),
                      "mean_z_watermarked": round(sum(zw) / len(zw), 3) if zw else None,
                      "mean_z_unwatermarked": round(sum(zu) / len(zu), 3) if zu else None}

    def transform_mix(self, docs, ctx):
        z = self.detect([d.text for d in docs], ctx.tokenizer)
        frac = float(self.p["watermark_fraction"])
        truth = [not d.is_human and chosen(d.text, self.p["key"], frac) for d in docs]
        hit = [v >= float(self.p["z_threshold"]) for v in z]
        tp = sum(1 for t, h in zip(truth, hit) if t and h)
        fp = sum(1 for t, h in zip(truth, hit) if h and not t)
        fn = sum(1 for t, h in zip(truth, hit) if t and not h)
        kept = [d for d, h in zip(docs, hit) if not h]
        added = []
        if self.p["action"] == "replace" and len(kept) < len(docs):
            rng = random.Random(f"watermark_filter:{ctx.seed}:{ctx.generation}")
            added = rng.sample(ctx.pool, min(len(docs) - len(kept), len(ctx.pool)))
        return kept + added, {
            "mix_docs": len(docs), "watermarked": sum(truth), "detected": sum(hit), "true_positives": tp,
            "false_positives": fp, "false_negatives": fn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "dropped": len(docs) - len(kept), "real_added": len(added), "mean_z": round(sum(z) / max(1, len(z)), 3),
        }
