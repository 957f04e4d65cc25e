"""The papers' training rows on the real tiny model: one document per row, its loss without padding or prompt,
gradient clipping, and the config keys that choose them.

    .venv/bin/python -m pytest -q tests/test_training_rows.py
"""

from __future__ import annotations

import dataclasses

import pytest
import torch


def test_per_document_rows_hold_one_document_each_truncated_or_padded(tiny):
    from madbench.training.packing import rows_per_document

    _, split, tokenizer, _ = tiny
    texts = [d.text for d in split.pool[:6]]
    ids, labels, mix_tokens = rows_per_document(tokenizer, texts, 48)
    assert ids.shape == (6, 48)
    want_total = 0
    for i, text in enumerate(texts):
        doc = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        row = doc[:48]
        want_total += len(row)
        assert ids[i, : len(row)].tolist() == row  # the row starts with its own document, nothing of another
        assert (labels[i, len(row):] == -100).all()  # padding is out of the loss
        assert (labels[i, : len(row)] != -100).all()
    assert mix_tokens == want_total
    assert any(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 2 < 48 for t in texts)  # some rows padded


def test_per_document_loss_ignores_padding_and_the_masked_prompt_by_hand(tiny):
    """The model's loss on padded rows with a masked prefix equals the mean NLL over the kept targets, computed by hand."""
    from madbench.training.packing import rows_per_document

    _, split, tokenizer, base = tiny
    texts = [split.pool[2].text[:120], split.pool[3].text[:60]]
    prompt_chars = [30, 0]
    ids, labels, _ = rows_per_document(tokenizer, texts, 64, prompt_chars)
    with torch.no_grad():
        loss = base(input_ids=ids, labels=labels).loss
        logp = torch.log_softmax(base(input_ids=ids).logits.float(), dim=-1)
    nll, count = 0.0, 0
    for i, text in enumerate(texts):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        doc = [tokenizer.bos_token_id] + enc["input_ids"] + [tokenizer.eos_token_id]
        kept = [prompt_chars[i] == 0] + [s >= prompt_chars[i] for s, _ in enc["offset_mapping"]] + [True]
        for pos in range(1, len(doc)):  # position pos is predicted from pos - 1; BOS (pos 0) is never a target
            if kept[pos]:
                nll -= logp[i, pos - 1, doc[pos]].item()
                count += 1
    assert sum(1 for s in tokenizer(texts[0], add_special_tokens=False, return_offsets_mapping=True)
                                       ["offset_mapping"] if s[0] < 30) > 0  # the prefix really masks tokens
    assert loss.item() == pytest.approx(nll / count, rel=1e-4)


def test_training_per_document_counts_the_rows_and_clipping_changes_the_update(tiny):
    from madbench.training.trainer import make_peft_model, train_lora

    cfg, split, tokenizer, base = tiny
    texts = [d.text for d in split.pool[:5]]
    per_doc = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, packing="per_document",
                                                                 batch_size=5, learning_rate=1e-2))
    stats = train_lora(make_peft_model(base, per_doc, 0, None), tokenizer, texts, per_doc, 0).stats
    assert stats.train_steps == 1  # 5 rows, batch 5: one row per document
    deltas = []
    for clip in (0.0, 1e-4):
        c = dataclasses.replace(per_doc, train=dataclasses.replace(per_doc.train, max_grad_norm=clip))
        model = train_lora(make_peft_model(base, c, 0, None), tokenizer, texts, c, 0).model
        deltas.append(sum(float(p.detach().abs().sum()) for n, p in model.named_parameters() if "lora_B" in n))
    assert deltas[1] < deltas[0]  # a tiny clip norm shrinks the first step's update (B starts at 0)


def test_config_keys_refuse_bad_values_and_keep_old_hashes():
    from madbench.config.run_config import build_config
    from madbench.errors import MadbenchError

    base = build_config({}, None, [])
    same = build_config({}, None, ["train.packing=packed", "train.max_grad_norm=0"])
    assert same.hash() == base.hash()  # a folder made before these keys resumes with its hash
    assert build_config({}, None, ["train.packing=per_document"]).hash() != base.hash()
    with pytest.raises(MadbenchError, match="did you mean 'per_document'"):
        build_config({}, None, ["train.packing=per_documents"])
    with pytest.raises(MadbenchError, match="train.max_grad_norm"):
        build_config({}, None, ["train.max_grad_norm=-1"])


def test_best_val_keeps_the_epoch_with_the_lowest_validation_loss(tiny):
    """Training at a rate that overshoots after the first epochs: the kept weights are those of the epoch whose
    validation loss was lowest, measured again on the returned model."""
    from madbench.training.packing import training_rows
    from madbench.training.trainer import make_peft_model, train_lora, validation_loss
    from accelerate import Accelerator

    cfg, split, tokenizer, base = tiny
    c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=4, checkpoint="best_val", learning_rate=0.3,
                                                           warmup_steps=0, mixed_precision="no"))
    texts, val = [d.text for d in split.pool[:8]], [d.text for d in split.pool[8:14]]
    result = train_lora(make_peft_model(base, c, 0, None), tokenizer, texts, c, 0, validation=(val, [0] * len(val)))
    losses, kept = result.stats.train_val_losses, result.stats.train_checkpoint_epoch
    assert len(losses) == 4 and kept == losses.index(min(losses)) + 1
    assert kept != 4, losses  # the constructed case: the last epoch is not the best one
    ids, labels, _ = training_rows(tokenizer, val, c.train.seq_len, c.train.packing)
    assert validation_loss(result.model, ids, labels, 8, Accelerator(cpu=True)) == pytest.approx(min(losses), rel=1e-4)
    assert result.stats.as_dict()["train_checkpoint_epoch"] == kept


def test_token_share_picks_whole_documents_nearest_the_share_and_refuses_what_none_meets():
    from madbench.errors import MadbenchError
    from madbench.loop.shares import real_documents_for_tokens

    assert real_documents_for_tokens([160] * 64, 58 * 65, 0.1) == 3  # 480 / 4250 = 11.3%, nearest 10%
    assert real_documents_for_tokens([65] * 64, 58 * 65, 0.1) == 6  # equal rows: the share of rows
    assert real_documents_for_tokens([160] * 64, 100, 0.0) == 0
    with pytest.raises(MadbenchError, match="cannot be met by whole documents"):
        real_documents_for_tokens([1000] * 4, 100, 0.05)


def test_new_keys_refuse_bad_values_and_keep_old_hashes():
    from madbench.config.run_config import build_config
    from madbench.errors import MadbenchError

    base = build_config({}, None, [])
    same = build_config({}, None, ["train.checkpoint=last", "data.val_docs=0", "loop.share_unit=documents",
                                   "train.mask_human_prompt=false"])
    assert same.hash() == base.hash()
    with pytest.raises(MadbenchError, match="did you mean 'best_val'"):
        build_config({}, None, ["train.checkpoint=best"])
    with pytest.raises(MadbenchError, match="data.val_docs=0 leaves none"):
        build_config({}, None, ["train.checkpoint=best_val"])
    with pytest.raises(MadbenchError, match="did you mean 'tokens'"):
        build_config({}, None, ["loop.share_unit=token"])
    with pytest.raises(MadbenchError, match="counted by synthetic_augmentation only"):
        build_config({}, None, ["loop.share_unit=tokens"])
    with pytest.raises(MadbenchError, match="no continuation token would be trained"):
        build_config({}, None, ["train.packing=per_document", "sampling.keep_prompt=true", "data.prompt_words=64",
                                "train.seq_len=64"])
