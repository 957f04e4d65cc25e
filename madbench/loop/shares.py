"""The real share of a training mix, counted in documents or in trained tokens (``loop.share_unit``).

    madbench run --preset shumailov2024          # loop.share_unit=tokens: "10% kept" is 10% of the trained tokens

``loop.real_fraction`` is a share of documents by default: ``round(f x data.train_docs)`` real documents.
Shumailov et al. keep 10% of 64-token blocks, i.e. of the tokens trained on; a real passage is longer than a
64-token continuation, so 10% of the documents is about 20-35% of the tokens. With ``share_unit=tokens`` the
synthetic part stays as with documents and the real part is the number of whole real documents whose trained
tokens make the share nearest to ``f`` (:func:`real_documents_for_tokens`); a share no whole document can come
near is refused in one line. Every generation records both shares (:func:`mix_share`, ``meta.json: share``).
"""

from __future__ import annotations

from typing import List, Sequence

from madbench.errors import MadbenchError

TOKENS_PER_WORD = 1.3  # pre-flight estimate only (KJV words in SmolLM2's tokenizer); the mix counts real tokens
TOLERANCE = 0.5  # a share off its target by more than half of it cannot be met by whole documents


def trained_tokens(tokenizer, cfg, texts: List[str], prompt_chars: List[int]) -> List[int]:
    """Per text, the loss targets its row(s) hold as ``train.packing`` makes them (a per-document row is cut at
    ``train.seq_len``; masked prompts and padding are not targets)."""
    from madbench.training.packing import rows_per_document

    if not texts:
        return []
    # packed: one uncut row per text (a token holds at least one character, plus BOS and EOS)
    seq = cfg.train.seq_len if cfg.train.packing == "per_document" else max(len(t) for t in texts) + 2
    _, labels, _ = rows_per_document(tokenizer, texts, seq, prompt_chars)
    return (labels[:, 1:] != -100).sum(dim=1).tolist()


def real_documents_for_tokens(real_tokens: Sequence[int], synthetic_tokens: int, fraction: float, where: str = "") -> int:
    """How many of the first real documents (``real_tokens``: their trained tokens, in pool order) make the real share
    of tokens nearest to ``fraction`` beside ``synthetic_tokens``; refuses a share no whole document comes near."""
    if fraction <= 0:
        return 0
    best, best_gap, total = 0, fraction, 0
    for k, n in enumerate(real_tokens, start=1):
        total += n
        share = total / max(1, total + synthetic_tokens)
        if abs(share - fraction) < best_gap:
            best, best_gap = k, abs(share - fraction)
        if share >= fraction:
            break
    if best_gap > TOLERANCE * fraction:
        got = 0.0 if best == 0 else sum(real_tokens[:best]) / (sum(real_tokens[:best]) + synthetic_tokens)
        raise MadbenchError(
            f"{where}loop.real_fraction={fraction} of the trained tokens (loop.share_unit=tokens) cannot be met by whole "
            f"documents: the nearest is {got:.3f} ({best} real of {len(real_tokens)} available, {synthetic_tokens} synthetic "
            f"tokens); raise data.train_docs or sampling.num_samples, change loop.real_fraction, or use loop.share_unit=documents")
    return best


def mix_share(tokenizer, cfg, docs, texts: List[str], prompt_chars: List[int]) -> dict:
    """``meta.json: share``: the real share of a mix in documents and in trained tokens, and which unit the run sets."""
    counts = trained_tokens(tokenizer, cfg, texts, prompt_chars)
    real = sum(n for d, n in zip(docs, counts) if d.is_human)
    return {"unit": cfg.loop.share_unit, "real_documents": sum(d.is_human for d in docs) / max(1, len(docs)),
            "real_tokens": real / max(1, sum(counts)), "trained_tokens": int(sum(counts))}


def check(cfg, regimes) -> None:
    """Pre-flight for ``loop.share_unit=tokens`` (``regimes``: the run's, madbench.loop.regimes.regimes_of): a regime
    that can count it, and a share whole documents can come near, estimated at ``TOKENS_PER_WORD`` tokens a word and
    ``sampling.max_new_tokens`` a sample."""
    if cfg.loop.share_unit != "tokens":
        return
    mixing = [r for r in regimes if r.mixes_real]
    unable = [r.name for r in mixing if not getattr(getattr(r, "policy", r), "token_share", False)]
    if unable:
        raise MadbenchError(f"loop.share_unit=tokens is counted by synthetic_augmentation only; {unable[0]} counts its real "
                            "part in documents: use loop.share_unit=documents or drop it from loop.regimes")
    d, f = cfg.data, cfg.loop.real_fraction
    real = int(TOKENS_PER_WORD * d.doc_words) + 1
    if cfg.train.packing == "per_document":
        real = min(real, cfg.train.seq_len - 1)
    synthetic = (d.train_docs - int(round(f * d.train_docs))) * (cfg.sampling.max_new_tokens + 1)
    real_documents_for_tokens([real] * d.train_docs, synthetic, f, where="estimated before training: ")
