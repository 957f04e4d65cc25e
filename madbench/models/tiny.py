"""Build a tiny Llama offline: a byte-level BPE tokenizer and a briefly pretrained model.

Used by tests and ``madbench regress``: it is trained on the run's own corpus
(training pool and fresh text only, never the held-out set), so it writes
corpus-like text and can collapse within a few generations. Built once per
(corpus, size) and cached under ``$MADBENCH_CACHE/models/tiny-*``.

    madbench run model.name=tiny
    python scripts/build_tiny_models.py      # rebuild the packaged ones (madbench/models/pretrained/)

Pretraining is deterministic on one processor kind but not across kinds: torch's AVX2 and AVX-512
kernels round differently, and 400 steps turn that into another model (measured: the same build under
``ATEN_CPU_CAPABILITY=default`` and ``avx2`` gave different weights, identical tokenizers). A benchmark
whose every seed starts from one base model would then shift as a whole between machines, which
``madbench regress``'s drift check rightly calls a regression. So the base models of the smoke and tiny
presets (the tests and ``madbench regress``) ship with madbench, built once
(``madbench_tiny.json`` says on which processor), and every machine starts from the same bytes; other
corpora and sizes are still built here.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch

from madbench.config.run_config import config_hash
from madbench.results.fileio import atomic_dir, cache_dir, publish_cached, write_json
from madbench.training.packing import full_blocks, pack

PACKAGED = Path(__file__).resolve().parent / "pretrained"  # tiny-<size>-<key>/: see the module docstring
SIZES = {
    # name: (vocab, hidden, layers, heads, intermediate, pretrain steps, seq, batch)
    "small": (1024, 64, 2, 4, 192, 200, 64, 16),
    "base": (2048, 128, 4, 4, 384, 400, 96, 16),
}


def folder_name(cfg) -> str:
    """``tiny-<size>-<hash of what the pretraining reads>``: the corpus split and the size's spec."""
    key = config_hash({"corpus": cfg.data.corpus, "doc_words": cfg.data.doc_words, "split_seed": cfg.data.split_seed,
                       "eval_docs": cfg.data.eval_docs, "max_docs": cfg.data.max_docs, "size": SIZES[cfg.model.tiny_size], "v": 2})
    return f"tiny-{cfg.model.tiny_size}-{key}"


def packaged_folder(cfg) -> Path:
    """Where the shipped model of this config would be (it exists for the smoke and tiny presets)."""
    return PACKAGED / folder_name(cfg)


def build_tiny_model(cfg, split):
    size = cfg.model.tiny_size
    if size not in SIZES:
        from madbench.errors import MadbenchError
        from madbench.registry import did_you_mean

        raise MadbenchError(f"unknown model.tiny_size '{size}';{did_you_mean(size, SIZES)} use one of {', '.join(SIZES)}")
    packaged = packaged_folder(cfg)
    if (packaged / "config.json").is_file():
        return packaged
    target = cache_dir() / "models" / packaged.name
    if (target / "config.json").is_file():
        return target
    texts = [d.text for d in split.pool + split.fresh]
    tmp = atomic_dir(target)
    _build(texts, SIZES[size], tmp)
    write_json(tmp / "madbench_tiny.json", tiny_record(size, len(texts)))
    publish_cached(tmp, target)
    return target


def read_record(folder) -> dict:
    """The ``madbench_tiny.json`` of a built or packaged tiny model."""
    from madbench.results.fileio import read_json

    return read_json(Path(folder) / "madbench_tiny.json")


def tiny_record(size: str, docs: int) -> dict:
    """What ``madbench_tiny.json`` says of a built model: its spec, and the processor and torch that pretrained it."""
    from madbench.processor import processor

    return {"size": size, "spec": SIZES[size], "docs": docs, "built_on": processor()["kind"], "torch": torch.__version__}


def _build(texts, spec, out_dir) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab, hidden, layers, heads, inter, steps, seq, batch = spec
    torch.manual_seed(0)
    rng = random.Random(0)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=inter,
                         max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    # Pretrain on a packed token stream (BOS text EOS ...), full blocks only, so that the model writes corpus-like text.
    ids, labels = pack(tokenizer, texts, seq)
    blocks = ids[full_blocks(labels)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model.train()
    for step in range(steps):
        lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.tensor([rng.randrange(len(blocks)) for _ in range(batch)])
        loss = model(input_ids=blocks[idx], labels=blocks[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
