"""Data hygiene: estimate a corpus's machine-written share with a calibrated one-model detector; count duplicates.

    madbench audit my_corpus/                       # share [95% interval], duplicates, place on the threshold curve
    madbench audit my_corpus/ --score-mixtures      # the estimator's error and coverage at known shares 0..100%

The detector is madbench's one-model Binoculars score (madbench/mitigations/detector.py): per passage,
mean NLL / mean predictive entropy under the detector model (default: the ``tiny`` preset's model);
its own samples score near or below 1, human text above. It is calibrated on known human text (the
preset corpus's held-out passages, or ``--human``) and known machine text (the model's own unconditional
samples, cut to the same length): the threshold t maximises TPR - FPR there (Youden), and the share is
the adjusted classify-and-count estimate (Forman 2008)

    share = clip((q - FPR) / (TPR - FPR), 0, 1),   q = share of corpus passages scoring below t.

Its 95% interval is a percentile bootstrap of the unclipped estimate, clipped to [0, 1] afterwards, that
resamples the corpus and both calibration sets, the threshold chosen again in each replicate. What it estimates is the share written by the detector's model
(or one much like it), in the calibration's domain: text from another model, or human text unlike the
calibration's, moves the estimate with nothing to show for it, so the audit checks that it can see:

* **fit**: the corpus's passages must look like a mix of the two calibration sets. Per feature (the
  score, mean NLL, mean entropy) the Kolmogorov-Smirnov distance between the corpus and the mix
  ``(1 - share) F_human + share F_machine`` at the estimated share; its null is simulated from the
  calibration sets themselves (each split in halves: a corpus drawn from one half's mix, scored against the
  other's, the distance rescaled to the full reference size). ``fit_p`` < ``FIT_P``: the corpus is not a
  mix of what the audit was calibrated on (another domain, sampler or model) and the answer is "cannot tell";
* **sight**: every machine source it was calibrated on (each sampler of ``--sampler``, each ``--machine``
  corpus) must be told from the human set (AUROC >= ``MIN_SOURCE_AUROC``); text from a source it does not
  see reads as human, so then too the answer is "cannot tell".
"cannot tell" comes with no share, no interval and nothing about the threshold curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from madbench.errors import MadbenchError

MIN_PASSAGES = 20
FIT_P = 0.01  # below it the corpus is not a mix of the calibration sets (a 1% false "cannot tell" rate, nominal)
FIT_DRAWS = 200
MIN_SOURCE_AUROC = 0.75  # a calibrated machine source told from human text worse than this: the detector is blind to it
RESAMPLES = 400
SEED = 31
# docs/threshold.md: `madbench threshold --preset tiny --regime fresh_data --tolerance 0.05 --seeds 0 1 2 --steps 3`
THRESHOLD_CURVE = {"model": "tiny", "regime": "fresh_data", "holds_from_real_share": 0.45, "bracket": (0.3375, 0.45),
                   "source": "docs/threshold.md"}


def corpus_passages(path: str, doc_words: int) -> List[str]:
    """The corpus cut into passages of ``doc_words`` words; one line for an empty, binary or too-small corpus."""
    from madbench.data.corpus import load_texts, passages

    texts = load_texts(str(path))  # missing, binary, non-text or empty files: one line naming the file
    cut = passages(texts, doc_words)
    if len(cut) < MIN_PASSAGES:
        raise MadbenchError(f"corpus '{path}' has {len(cut)} passage(s) of about {doc_words} words; the audit needs at least "
                            f"{MIN_PASSAGES} to estimate a share (give more text or a smaller --doc-words)")
    return cut


@dataclass
class Detector:
    """The detector model and its corpus split (for known human text); built from a preset."""

    cfg: object
    split: object
    tokenizer: object
    model: object

    @classmethod
    def from_preset(cls, preset: str = "tiny", doc_words: int = 32, overrides: Sequence[str] = ()) -> "Detector":
        from madbench.config.presets import PRESETS
        from madbench.config.run_config import build_config
        from madbench.data.corpus import load_split
        from madbench.models.base_model import load_base, resolve_model

        cfg = build_config(PRESETS.get(preset)(), None, ["sampling.prompt=none", f"data.doc_words={doc_words}",
                                                         f"sampling.max_new_tokens={max(16, int(doc_words * 1.6))}",
                                                         *overrides])
        split = load_split(cfg)
        tokenizer, model = load_base(resolve_model(cfg, split), cfg)
        return cls(cfg, split, tokenizer, model)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Per text: (Binoculars score = NLL / entropy, mean NLL, mean entropy); an unscorable text is nan."""
        from madbench.metrics.perplexity import per_text_nll_entropy

        rows = per_text_nll_entropy(self.model, self.tokenizer, list(texts), self.cfg.eval.batch_size)
        return np.array([(nll / ent, nll, ent) if ent > 0 and math.isfinite(nll) else (np.nan,) * 3 for nll, ent in rows],
                        dtype=float).reshape(-1, 3)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Binoculars score per text (NLL / entropy; higher = more human-like); an unscorable text is nan."""
        return self.features(texts)[:, 0]

    def with_sampler(self, temperature: float, top_p: float) -> "Detector":
        """The same model and split, sampling at another temperature / top-p (a calibration source)."""
        import dataclasses

        return dataclasses.replace(self, cfg=dataclasses.replace(
            self.cfg, sampling=dataclasses.replace(self.cfg.sampling, temperature=float(temperature), top_p=float(top_p))))

    def sampler(self) -> str:
        return f"temperature {self.cfg.sampling.temperature:g}, top-p {self.cfg.sampling.top_p:g}"

    def samples(self, n: int, seed: int) -> List[str]:
        """``n`` unconditional samples of the model, cut to the passage length (short ones dropped)."""
        from madbench.generation.sampling import generate

        words = self.cfg.data.doc_words
        out: List[str] = []
        for attempt in range(4):
            texts = generate(self.model, self.tokenizer, [""] * (n - len(out)), self.cfg, seed=seed + 1000 * attempt, desc="audit samples")
            texts = [c.continuation for c in texts]
            out += [" ".join(t.split()[:words]) for t in texts if len(t.split()) >= max(4, words // 2)]
            if len(out) >= n:
                break
        return out[:n]

    def human(self) -> List[str]:
        """Known human passages: the preset corpus's held-out and fresh passages."""
        return [d.text for d in list(self.split.eval) + list(self.split.fresh)]


def _youden(human: np.ndarray, machine: np.ndarray) -> float:
    """The threshold t (machine if score < t) with the largest TPR - FPR on the calibration sets."""
    cuts = np.unique(np.concatenate([human, machine]))
    cuts = np.append(cuts, np.inf)
    tpr = (machine[None, :] < cuts[:, None]).mean(axis=1)
    fpr = (human[None, :] < cuts[:, None]).mean(axis=1)
    return float(cuts[int(np.argmax(tpr - fpr))])


def _point(corpus: np.ndarray, human: np.ndarray, machine: np.ndarray) -> tuple:
    t = _youden(human, machine)
    tpr, fpr, q = float((machine < t).mean()), float((human < t).mean()), float((corpus < t).mean())
    raw = (q - fpr) / (tpr - fpr) if tpr - fpr > 0 else float("nan")  # unclipped: the bootstrap spreads past 0 and 1
    return raw, t, tpr, fpr


def estimate_share(corpus: Sequence[float], human: Sequence[float], machine: Sequence[float],
                   resamples: int = RESAMPLES, seed: int = SEED) -> Dict[str, object]:
    """Adjusted classify-and-count share of machine text with a bootstrap 95% interval (module docstring)."""
    c, h, m = (np.asarray([x for x in v if np.isfinite(x)], dtype=float) for v in (corpus, human, machine))
    raw, t, tpr, fpr = _point(c, h, m)
    rng = np.random.default_rng(seed)
    boot = [_point(rng.choice(c, len(c)), rng.choice(h, len(h)), rng.choice(m, len(m)))[0] for _ in range(resamples)]
    boot = [b for b in boot if math.isfinite(b)]
    # percentiles of the unclipped estimate, then clipped: a clipped bootstrap would pile up at 0 (or 1) and miss it
    lo, hi = (np.clip(np.percentile(boot, [2.5, 97.5]), 0, 1) if boot else (float("nan"), float("nan")))
    share = float(np.clip(raw, 0, 1)) if math.isfinite(raw) else float("nan")
    from madbench.mitigations.detector import auroc

    return {"share": share, "interval": [float(lo), float(hi)], "threshold": t, "tpr": tpr, "fpr": fpr,
            "auroc": auroc([-x for x in list(h) + list(m)], [False] * len(h) + [True] * len(m)),
            "passages": len(c), "calibration": {"human": len(h), "machine": len(m)}}


def _ks(x: np.ndarray, h: np.ndarray, m: np.ndarray, w: float) -> float:
    """KS distance between the sample x and the mix (1 - w) F_h + w F_m."""
    pts = np.sort(np.concatenate([x, h, m]))
    ecdf = lambda v: np.searchsorted(np.sort(v), pts, side="right") / len(v)  # noqa: E731
    return float(np.max(np.abs(ecdf(x) - ((1 - w) * ecdf(h) + w * ecdf(m)))))


def _fit_stat(c: np.ndarray, h: np.ndarray, m: np.ndarray, w: float) -> tuple:
    stats = [_ks(c[:, j], h[:, j], m[:, j], w) for j in range(c.shape[1])]
    j = int(np.argmax(stats))
    return stats[j], FEATURES[j]


FEATURES = ("score", "mean NLL", "mean entropy")


def _finite(a) -> np.ndarray:
    a = np.asarray(a, dtype=float).reshape(len(a), -1)
    return a[np.all(np.isfinite(a), axis=1)]


def fit_check(corpus, human, machine, share: float, draws: int = FIT_DRAWS, seed: int = SEED) -> Dict[str, object]:
    """Is the corpus a mix of the calibration sets? Its worst feature's KS distance from the mix at ``share``, and
    the share of simulated in-calibration corpora at least that far (module docstring: the fit check)."""
    c, h, m = _finite(corpus), _finite(human), _finite(machine)
    w = float(np.clip(share, 0, 1)) if math.isfinite(share) else 0.5
    stat, feature = _fit_stat(c, h, m, w)
    rng = np.random.default_rng(seed)
    n, nref = len(c), (len(h) + len(m)) / 2
    null = []
    for _ in range(draws):
        hi, mi = rng.permutation(len(h)), rng.permutation(len(m))
        ha, hb, ma, mb = h[hi[: len(h) // 2]], h[hi[len(h) // 2:]], m[mi[: len(m) // 2]], m[mi[len(m) // 2:]]
        k = rng.binomial(n, w)
        draw = np.concatenate([hb[rng.integers(0, len(hb), n - k)], mb[rng.integers(0, len(mb), k)]])
        raw = _point(draw[:, 0], ha[:, 0], ma[:, 0])[0]
        ws = float(np.clip(raw, 0, 1)) if math.isfinite(raw) else w
        # a half-size reference spreads the distance more: rescale it to the full reference size
        null.append(_fit_stat(draw, ha, ma, ws)[0] * math.sqrt((1 / n + 1 / nref) / (1 / n + 2 / nref)))
    p = (1 + sum(x >= stat for x in null)) / (1 + len(null))
    return {"ks": stat, "feature": feature, "p": p, "fits": p >= FIT_P}


def source_sight(human_scores, sources: Dict[str, Sequence[float]]) -> Dict[str, float]:
    """AUROC of each calibrated machine source against the human set (1: the detector sees it perfectly)."""
    from madbench.mitigations.detector import auroc

    h = [x for x in human_scores if np.isfinite(x)]
    out = {}
    for name, m in sources.items():
        m = [x for x in m if np.isfinite(x)]
        out[name] = auroc([-x for x in h + m], [False] * len(h) + [True] * len(m))
    return out


def verdict(est: Dict[str, object], fit: Dict[str, object], sight: Dict[str, float]) -> Optional[str]:
    """None when the share stands; else why the audit cannot tell."""
    blind = {k: v for k, v in sight.items() if v < MIN_SOURCE_AUROC}
    if blind:
        return ("the detector does not tell " + ", ".join(f"{k} (AUROC {v:.2f})" for k, v in blind.items())
                + " from the human calibration text, so text from it would read as human")
    if not (est["tpr"] > est["fpr"]):
        return f"the detector does not tell its calibration machine text from the human (TPR {est['tpr']:.2f} <= FPR {est['fpr']:.2f})"
    if not fit["fits"]:
        return (f"the corpus is not a mix of the calibration sets (its {fit['feature']} lies KS {fit['ks']:.2f} from the "
                f"best mix, p = {fit['p']:.3f} < {FIT_P}): another domain, sampler or model than calibrated on")
    return None


def duplicate_rates(texts: Sequence[str], threshold: float = 0.5) -> Dict[str, float]:
    """Exact and near-duplicate shares (MinHash Jaccard of word 3-gram shingles >= threshold; mitigations/dedup.py)."""
    from madbench.mitigations.dedup import near_duplicates

    labels = near_duplicates(list(texts), threshold)
    n = max(1, len(labels))
    return {"exact": labels.count("exact") / n, "near": labels.count("near") / n, "near_threshold": threshold}


def threshold_position(share: float, curve: Optional[dict] = None) -> str:
    """Where a corpus of this machine share, used as the real part of the loop, falls on the measured threshold."""
    curve = curve or THRESHOLD_CURVE
    real = 1.0 - share
    lo, hi = curve["bracket"]
    where = ("above the bracket: the loop held there" if real >= hi else
             "below the bracket: the loop degraded there" if real < lo else "inside the bracket: undecided")
    return (f"real share {real:.2f} vs the measured threshold {curve['holds_from_real_share']} (bracket {lo}-{hi}; "
            f"{curve['model']} model, {curve['regime']}, perplexity within 5%; {curve['source']}): {where}")


def mixture_table(det: Detector, human: Sequence[str], sources: Dict[str, Sequence[str]], mix_machine: Sequence[str],
                  shares: Sequence[float], n_docs: int, reps: int, calibration: int, seed: int = SEED,
                  cal_human: Optional[Sequence[str]] = None) -> List[dict]:
    """Error, interval coverage and "cannot tell" count of the audit on mixtures of known share: human passages
    and ``mix_machine`` (the generator under test, drawn apart from the calibration ``sources``); the human
    calibration set from ``cal_human`` (another source) or from ``human`` (disjoint from each mixture)."""
    h_f, x_f = det.features(human), det.features(mix_machine)
    ch_f = det.features(cal_human) if cal_human is not None else None
    src_f = {k: det.features(v) for k, v in sources.items()}
    rng = np.random.default_rng(seed)
    per = max(1, calibration // max(1, len(src_f)))  # the machine calibration set: the sources in equal parts
    rows = []
    for share in shares:
        errors, covered, none, blind = [], 0, 0, 0
        for r in range(reps):
            hi, xi = rng.permutation(len(h_f)), rng.permutation(len(x_f))
            k = int(round(share * n_docs))
            cal_h = h_f[hi[:calibration]] if ch_f is None else ch_f[rng.permutation(len(ch_f))[:calibration]]
            if ch_f is not None:
                hi = np.concatenate([hi[calibration:], hi[:calibration]])  # every human passage may go to the mixture
            cal = {name: f[rng.permutation(len(f))[:per]] for name, f in src_f.items()}
            cal_m = np.concatenate(list(cal.values()))
            mix = np.concatenate([h_f[hi[calibration:calibration + n_docs - k]], x_f[xi[:k]]])
            est = estimate_share(mix[:, 0], cal_h[:, 0], cal_m[:, 0], resamples=200, seed=seed + r)
            fit = fit_check(mix, cal_h, cal_m, est["share"], draws=100, seed=seed + r)
            why = verdict(est, fit, source_sight(cal_h[:, 0], {n: f[:, 0] for n, f in cal.items()}))
            if why is not None:  # "cannot tell": no estimate
                none += 1
                blind += why.startswith("the detector does not tell")
                continue
            errors.append(est["share"] - k / n_docs)
            covered += est["interval"][0] <= k / n_docs <= est["interval"][1]
        err = np.asarray(errors) if errors else np.asarray([np.nan])
        rows.append({"share": share, "mean_error": float(np.mean(err)), "mean_abs_error": float(np.mean(np.abs(err))),
                     "rmse": float(np.sqrt(np.mean(np.square(err)))), "coverage": covered / len(errors) if errors else None,
                     "reps": reps, "no_estimate": none, "blind": blind})
    return rows


def pool_auroc(det: Detector, human: Sequence[str], machine: Sequence[str]) -> Optional[float]:
    """The detector's AUROC on two pools (1 = every machine passage scores below every human one)."""
    from madbench.mitigations.detector import auroc

    h, m = det.scores(human), det.scores(machine)
    keep = [(-x, lab) for x, lab in zip(list(h) + list(m), [False] * len(h) + [True] * len(m)) if np.isfinite(x)]
    return auroc([x for x, _ in keep], [lab for _, lab in keep])
