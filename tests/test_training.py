"""LoRA training on the real tiny model: packing trains on every token of the mix and on no padding.

    .venv/bin/python -m pytest -q tests/test_training.py
"""

from __future__ import annotations

import pytest
import torch


def stream(tokenizer, texts):
    out = []
    for t in texts:
        out += [tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return out


def test_pack_keeps_every_token_and_masks_only_padding(tiny):
    """Defect: a short mix was padded with EOS that counted as labels, and the last partial block was dropped."""
    from madbench.training.trainer import pack, target_tokens

    _, split, tokenizer, _ = tiny
    for texts in ([split.pool[0].text], [d.text for d in split.pool[:7]]):
        ids, labels = pack(tokenizer, texts, 64)
        want = stream(tokenizer, texts)
        assert len(want) % 64 not in (0, 1)  # a partial last block exists
        assert ids.view(-1)[: len(want)].tolist() == want  # nothing dropped, order kept
        assert (labels != -100).sum() == len(want) and (labels.view(-1)[len(want):] == -100).all()
        assert target_tokens(labels) == len(want) - ids.shape[0]


def test_the_tiny_models_pretraining_blocks_are_packs_full_blocks(tiny):
    """One packing for fine-tuning and the tiny model's pretraining: its blocks are the stream cut in whole blocks."""
    from madbench.training.packing import full_blocks, pack

    _, split, tokenizer, _ = tiny
    for texts in ([split.pool[0].text], [d.text for d in split.pool[:7]], [d.text for d in split.pool[:40]]):
        want = stream(tokenizer, texts)
        ids, labels = pack(tokenizer, texts, 64)
        blocks = ids[full_blocks(labels)]
        assert blocks.dtype == torch.long
        assert blocks.tolist() == torch.tensor(want[: (len(want) // 64) * 64]).view(-1, 64).tolist()  # the old tiny._build


def test_padding_adds_nothing_to_the_loss_and_tokens_are_counted(tiny):
    import dataclasses

    from madbench.training.trainer import make_peft_model, pack, train_lora

    cfg, split, tokenizer, base = tiny
    text = [split.pool[1].text]
    ids, labels = pack(tokenizer, text, 64)
    n = len(stream(tokenizer, text))
    with torch.no_grad():
        alone = base(input_ids=ids[:, :n], labels=ids[:, :n]).loss
        padded = base(input_ids=ids, labels=labels).loss
    assert padded.item() == pytest.approx(alone.item(), rel=1e-5)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    texts = [d.text for d in split.pool[:5]]
    stats = train_lora(make_peft_model(base, cfg, 0, None), tokenizer, texts, cfg, 0).stats
    ids, _ = pack(tokenizer, texts, 64)
    assert stats.mix_tokens == len(stream(tokenizer, texts))
    assert stats.mix_tokens_trained == stats.mix_tokens - ids.shape[0]
    assert stats.train_tokens == 2 * stats.mix_tokens_trained
