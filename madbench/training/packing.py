"""Token packing: documents tokenised, joined with EOS and cut into fixed-length blocks.

Shared by fine-tuning (:mod:`madbench.training.trainer`, every block kept, the last one padded
and masked) and the tiny model's pretraining (:mod:`madbench.models.tiny`, full blocks only)::

    ids, labels = pack(tokenizer, texts, 128)
    ids[full_blocks(labels)]          # the blocks without padding
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch


def pack(tokenizer, texts: List[str], seq_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tokenise, join with EOS and cut into blocks of ``seq_len`` tokens: (input ids, labels).

    Every token of the mix is in a block: the last, partial block (or the only one, for a
    mix shorter than ``seq_len``) is filled with the pad token, whose labels are -100 so
    the loss never trains on padding. (A last block of a single token is dropped: the
    first position of a block is never a target, so it would carry no loss.)
    """
    bos = tokenizer.bos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stream: List[int] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        stream.extend(([bos] if bos is not None else []) + ids + [tokenizer.eos_token_id])
    if len(stream) % seq_len == 1 and len(stream) > 1:
        stream = stream[:-1]
    n = math.ceil(len(stream) / seq_len)
    fill = n * seq_len - len(stream)
    ids = torch.tensor(stream + [pad] * fill, dtype=torch.long).view(n, seq_len)
    labels = ids.clone()
    if fill:
        labels.view(-1)[len(stream):] = -100
    return ids, labels


def target_tokens(labels: torch.Tensor) -> int:
    """Tokens a batch trains on: positions after the first of each block whose label is not padding."""
    return int((labels[:, 1:] != -100).sum())


def full_blocks(labels: torch.Tensor) -> torch.Tensor:
    """Mask of the blocks that hold no padding (every block but a padded last one)."""
    return (labels != -100).all(dim=1)
