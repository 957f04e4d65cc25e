"""Token packing: documents tokenised, joined with EOS and cut into fixed-length blocks.

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
