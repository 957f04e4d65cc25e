"""What a mix trains on: the texts, the loss-masked prefix of each, the validation rows and the mix's real share.

    madbench run --preset drayson2025      # sampling.keep_prompt + train.mask_human_prompt: loss on each row's second half

Used by the steps (madbench/loop/steps.py); ``ctx`` is the run's StepContext (madbench/loop/context.py).
"""

from __future__ import annotations

import re
from typing import List, Tuple

from madbench.data.corpus import Doc


def training_texts(docs: List[Doc], keep_prompt: bool, human_prompt_words: int = 0) -> Tuple[List[str], List[int]]:
    """The texts a mix trains on and, per text, the leading characters that are a real prompt (not loss targets).

    A sample's text is its generated continuation; ``sampling.keep_prompt`` trains on prompt + continuation
    with the loss on the continuation (Drayson et al. 2025). Human documents are trained on whole, or with
    their first ``human_prompt_words`` words out of the loss (``train.mask_human_prompt``: Drayson's rows put
    the loss on the last half of every row, human rows too)."""
    texts, chars = [], []
    for d in docs:
        kept = keep_prompt and not d.is_human and bool(d.prompt)
        texts.append(f"{d.prompt} {d.text}".strip() if kept else d.text)
        chars.append(len(d.prompt) if kept else (_word_chars(d.text, human_prompt_words) if d.is_human else 0))
    return texts, chars


def mix_texts(cfg, docs: List[Doc]) -> Tuple[List[str], List[int]]:
    """:func:`training_texts` with the run's settings."""
    return training_texts(docs, cfg.sampling.keep_prompt, cfg.data.prompt_words if cfg.train.mask_human_prompt else 0)


def _word_chars(text: str, words: int) -> int:
    """Characters of ``text`` up to the end of its first ``words`` words (0 for 0)."""
    if words <= 0:
        return 0
    match = list(re.finditer(r"\S+", text))[:words]
    return match[-1].end() if match else 0


def token_counter(ctx):
    """loop.share_unit=tokens: docs -> the loss targets of each one's training row(s); None when shares count documents."""
    if ctx.cfg.loop.share_unit != "tokens":
        return None
    from madbench.loop.shares import trained_tokens

    return lambda docs: trained_tokens(ctx.tokenizer, ctx.cfg, *mix_texts(ctx.cfg, docs))


def mix_share(ctx, docs: List[Doc]) -> dict:
    """meta.json ``share``: the real share of the mix in documents and in trained tokens (madbench/loop/shares.py)."""
    from madbench.loop.shares import mix_share as share

    return share(ctx.tokenizer, ctx.cfg, docs, *mix_texts(ctx.cfg, docs))


def validation_rows(ctx):
    """(texts, prompt chars) of the real validation documents for ``train.checkpoint=best_val``, else None."""
    return mix_texts(ctx.cfg, ctx.split.val) if ctx.cfg.train.checkpoint == "best_val" else None


def prompt_share(docs: List[Doc], texts: List[str]) -> float:
    """Words of prompt text in the texts a mix trains on / all its words: a sample's prompt counts where its
    training text starts with it (0 for a mix of continuations alone, and for generation 0's real mix)."""
    total = sum(len(t.split()) for t in texts)
    prompt = sum(len(d.prompt.split()) for d, t in zip(docs, texts) if d.prompt and not d.is_human and t.startswith(d.prompt))
    return prompt / total if total else 0.0
