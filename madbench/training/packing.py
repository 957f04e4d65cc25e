"""Training rows: documents tokenised, joined with EOS and cut into fixed-length blocks (packing), or one
document per row (``train.packing=per_document``, :func:`rows_per_document`).

Shared by fine-tuning (:mod:`madbench.training.trainer`, every block kept, the last one padded
and masked) and the tiny model's pretraining (:mod:`madbench.models.tiny`, full blocks only)::

    ids, labels = pack(tokenizer, texts, 128)
    ids[full_blocks(labels)]          # the blocks without padding
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch


def pack(tokenizer, texts: List[str], seq_len: int,
         prompt_chars: Optional[List[int]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tokenise, join with EOS and cut into blocks of ``seq_len`` tokens: (input ids, labels).

    Every token of the mix is in a block: the last, partial block (or the only one, for a
    mix shorter than ``seq_len``) is filled with the pad token, whose labels are -100 so
    the loss never trains on padding. (A last block of a single token is dropped: the
    first position of a block is never a target, so it would carry no loss.)
    ``prompt_chars[i]`` > 0: the first that many characters of ``texts[i]`` are a prompt the
    model did not write (``sampling.keep_prompt``); its tokens and the document's BOS get
    label -100, so the loss is on the generated tokens only. See :func:`pack_documents`.
    """
    ids, labels, _ = pack_documents(tokenizer, texts, seq_len, prompt_chars)
    return ids, labels


def pack_documents(tokenizer, texts: List[str], seq_len: int, prompt_chars: Optional[List[int]] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """:func:`pack` and the number of tokens of the mix (BOS/EOS separators included, padding not)."""
    bos = tokenizer.bos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stream: List[int] = []
    trained: List[bool] = []
    for i, text in enumerate(texts):
        chars = prompt_chars[i] if prompt_chars else 0
        ids, keep = _tokens(tokenizer, text, chars)
        stream.extend(([bos] if bos is not None else []) + ids + [tokenizer.eos_token_id])
        trained.extend(([not chars] if bos is not None else []) + keep + [True])
    if len(stream) % seq_len == 1 and len(stream) > 1:
        stream, trained = stream[:-1], trained[:-1]
    n = math.ceil(len(stream) / seq_len)
    fill = n * seq_len - len(stream)
    ids = torch.tensor(stream + [pad] * fill, dtype=torch.long).view(n, seq_len)
    labels = ids.clone()
    labels.view(-1)[~torch.tensor(trained + [False] * fill, dtype=torch.bool)] = -100
    return ids, labels, len(stream)


def rows_per_document(tokenizer, texts: List[str], seq_len: int, prompt_chars: Optional[List[int]] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """One document per row (``train.packing=per_document``, the papers' rows): (input ids, labels, mix tokens).

    Row i is BOS + the tokens of ``texts[i]`` + EOS, cut to ``seq_len`` (the tail is dropped, as a tokenizer's
    ``truncation=True, max_length=seq_len`` does) and padded after it with the pad token; padding gets label -100,
    and so do a kept prompt's tokens and the BOS before them (``prompt_chars``, as in :func:`pack_documents`).
    No row attends to another document: a causal model never attends to the padding after its tokens.
    The mix tokens count what is in the rows (truncated tokens not, padding not)::

        ids, labels, n = rows_per_document(tokenizer, ["a text", "another"], 64)   # ids.shape == (2, 64)
    """
    bos = tokenizer.bos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(texts), seq_len), pad, dtype=torch.long)
    trained = torch.zeros((len(texts), seq_len), dtype=torch.bool)
    mix_tokens = 0
    for i, text in enumerate(texts):
        chars = prompt_chars[i] if prompt_chars else 0
        tokens, keep = _tokens(tokenizer, text, chars)
        row = (([bos] if bos is not None else []) + tokens + [tokenizer.eos_token_id])[:seq_len]
        mask = (([not chars] if bos is not None else []) + keep + [True])[:seq_len]
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        trained[i, : len(mask)] = torch.tensor(mask, dtype=torch.bool)
        mix_tokens += len(row)
    labels = ids.clone()
    labels[~trained] = -100
    return ids, labels, mix_tokens


def training_rows(tokenizer, texts: List[str], seq_len: int, packing: str = "packed",
                  prompt_chars: Optional[List[int]] = None) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """The rows ``train.packing`` names: :func:`pack_documents` ('packed') or :func:`rows_per_document`."""
    if packing == "per_document":
        return rows_per_document(tokenizer, texts, seq_len, prompt_chars)
    return pack_documents(tokenizer, texts, seq_len, prompt_chars)


def _tokens(tokenizer, text: str, prompt_chars: int) -> Tuple[List[int], List[bool]]:
    """The ids of ``text`` and, per id, whether it is trained on: not when it holds any of the first
    ``prompt_chars`` characters (offsets of a fast tokenizer; else the two parts tokenised apart)."""
    if not prompt_chars:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids, [True] * len(ids)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], [start >= prompt_chars for start, _ in enc["offset_mapping"]]
    head = tokenizer(text[:prompt_chars], add_special_tokens=False)["input_ids"]
    tail = tokenizer(text[prompt_chars:], add_special_tokens=False)["input_ids"]
    return head + tail, [False] * len(head) + [True] * len(tail)


def target_tokens(labels: torch.Tensor) -> int:
    """Tokens a batch trains on: positions after the first of each block whose label is not padding."""
    return int((labels[:, 1:] != -100).sum())


def full_blocks(labels: torch.Tensor) -> torch.Tensor:
    """Mask of the blocks that hold no padding (every block but a padded last one)."""
    return (labels != -100).all(dim=1)
