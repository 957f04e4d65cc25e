"""Perplexity of the generation's model on held-out human text.

Token-level perplexity: exp(total NLL / total predicted tokens), each document
scored on its own (BOS-prefixed when the tokenizer has one), in length-sorted batches.
"""

from __future__ import annotations

import math

import torch

from madbench.metrics import METRICS


def token_nll(model, tokenizer, texts, batch_size: int = 16, max_length: int = 512):
    """Return (sum of NLL, number of predicted tokens) over ``texts``."""
    rows = _nll_rows(model, tokenizer, texts, batch_size, max_length)
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


def per_text_nll(model, tokenizer, texts, batch_size: int = 16, max_length: int = 512):
    """Mean NLL per token of each text (in input order); inf for an empty text."""
    return [total / count if count else float("inf") for total, count in _nll_rows(model, tokenizer, texts, batch_size, max_length)]


def per_text_nll_entropy(model, tokenizer, texts, batch_size: int = 16, max_length: int = 512):
    """(mean NLL per token, mean predictive entropy per token) of each text, in input order; inf for an empty text.

    A text sampled from the model at temperature 1 has an expected NLL equal to the model's entropy at each
    position, so NLL / entropy is near 1 for the model's own text and above 1 for human text (the
    one-model form of Binoculars' perplexity over cross-perplexity; madbench/mitigations/detector.py).
    """
    rows = _nll_rows(model, tokenizer, texts, batch_size, max_length, entropy=True)
    return [(total / count, ent / count) if count else (float("inf"), float("inf")) for total, count, ent in rows]


TARGET_LOGP = "target_logp"  # ScoreCache table: (texts, max_length) -> each text's target log-probabilities
SEQUENCE_LOGP = "sequence_logp"  # ScoreCache table: BOS + token ids -> log-probabilities of ids[1:]


def remembered_target_logp(scores, texts, max_length: int = 512):
    """Per-text log-probabilities of every target token of ``texts`` (BOS-prefixed, as scored here), kept in the
    model's :class:`~madbench.models.scores.ScoreCache` ``scores`` by the perplexity metric's forward pass, or None:
    the rare-token metrics read them instead of running the same forward again (madbench/metrics/rare.py)."""
    return None if scores is None else scores.get(TARGET_LOGP, (tuple(texts), max_length))


def remembered_sequence_logp(scores, ids):
    """Log-probabilities of ``ids[1:]`` given everything before, for a sequence (BOS + tokens) that the
    perplexity metric scored into ``scores`` (the model's ScoreCache), or None. lm-eval's rolling loglikelihood
    of a held-out document is exactly this sum (madbench/evaluation/lmeval_model.py), so it is not computed twice."""
    return None if scores is None else scores.get(SEQUENCE_LOGP, tuple(ids))


@torch.no_grad()
def _nll_rows(model, tokenizer, texts, batch_size: int, max_length: int, entropy: bool = False, logp_out=None,
              ids_out=None):
    """(sum NLL, predicted tokens[, sum entropy]) for each text, in input order; ``logp_out`` (a list as long as
    ``texts``), when given, receives each text's target log-probabilities, ``ids_out`` its BOS + token ids."""
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"][: max_length - 1] for t in texts]
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[bos] + ids for ids in encoded]
    if ids_out is not None:
        ids_out[:] = encoded
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [(0.0, 0) + ((0.0,) if entropy else ())] * len(encoded)
    was_training = model.training
    model.eval()
    from madbench.models.inference import merged_lora

    with merged_lora(model):
        rows = _score(model, encoded, order, rows, batch_size, pad, device, entropy, logp_out)
    if was_training:
        model.train()
    return rows


def pad_batch(batch, pad):
    """Right-padded (input_ids, attention_mask) tensors of token-id lists."""
    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def _score(model, encoded, order, rows, batch_size, pad, device, entropy: bool = False, logp_out=None):
    for start in range(0, len(order), batch_size):
        batch = [encoded[i] for i in order[start : start + batch_size]]
        ids, mask = pad_batch(batch, pad)
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = ids[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none"
        ).view(targets.shape)
        valid = mask[:, 1:].float()
        sums, counts = (nll * valid).sum(1), valid.sum(1)
        if entropy:
            logp = torch.log_softmax(logits, dim=-1)
            ent = (-(logp.exp() * logp).sum(-1) * valid).sum(1)
        for row, i in enumerate(order[start : start + batch_size]):
            rows[i] = (float(sums[row]), int(counts[row])) + ((float(ent[row]),) if entropy else ())
            if logp_out is not None:  # right-padded: a row's first `count` positions are its targets
                logp_out[i] = (-nll[row, : int(counts[row])]).tolist()
    return rows


@METRICS.register("perplexity", higher_is_better=False, needs="model", value_range=(1.0, None))
def perplexity(ctx) -> float:
    """Token perplexity of the model on the held-out human documents."""
    logp, ids = [None] * len(ctx.human), []
    rows = ctx.cache["perplexity:rows"] = _nll_rows(ctx.model, ctx.tokenizer, ctx.human, ctx.batch_size, 512, logp_out=logp,
                                                    ids_out=ids)
    if ctx.scores is not None:  # this model's latest scoring only
        ctx.scores.replace(TARGET_LOGP, {(tuple(ctx.human), 512): logp})
        ctx.scores.replace(SEQUENCE_LOGP, {tuple(i): lp for i, lp in zip(ids, logp)})
    total, count = sum(r[0] for r in rows), sum(r[1] for r in rows)  # as token_nll; rows kept for the interval
    return math.exp(total / max(1, count))
