"""Why sampling sits where it does against the FLOP floor: decode-step cost by rows, matmul efficiency, bandwidth.

    .venv/bin/python scripts/decode_profile.py                 # default model (SmolLM2-135M)
    .venv/bin/python scripts/decode_profile.py model.name=tiny
    .venv/bin/python scripts/decode_profile.py --train         # instead: torch.profiler's table of LoRA training

Prints (1) milliseconds per decode step of madbench's sampler at 1, 8, 32 and 64 rows (a 1-row step is
dispatch plus streaming the weights; the growth after it is compute), (2) GFLOP/s of one decoder layer's
linear shapes at 64 rows with ``F.linear`` (warm caches) and with oneDNN-prepacked weights, beside the
2048x2048 peak that ``madbench bench`` uses for its floor, (3) the memory bandwidth of a 256 MB copy,
and (4) torch.profiler's operator table of a 64-row decode (the matmuls' share of a real step).
(madbench does not prepack: faster here on warm caches, no measurable change inside a decode step.)
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def best_of(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def profile_training(cfg, split, tokenizer, model) -> None:
    """torch.profiler's operator table of one epoch of LoRA training on 64 pool documents (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    from madbench.config.run_config import build_config
    from madbench.training.trainer import make_peft_model, train_lora

    c = build_config(cfg.to_dict(), overrides=["train.epochs=1"])
    texts = [d.text for d in split.pool[:64]]
    train_lora(make_peft_model(model, c, 0, None), tokenizer, texts[:16], c, 0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = train_lora(make_peft_model(model, c, 0, None), tokenizer, texts, c, 0)
    print(f"LoRA training, {result.stats.train_steps} steps, {result.stats.train_tokens} tokens (torch.profiler, self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def main(overrides) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from madbench.experiments.bench import matmul_peak
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model
    from madbench.models.runtime import tune_allocator
    from madbench.generation.sampling import generate, make_prompts

    tune_allocator()
    train = "--train" in overrides
    cfg = build_config(overrides=[o for o in overrides if o != "--train"])
    split = load_split(cfg)
    tokenizer, model = load_base(resolve_model(cfg, split), cfg)
    if train:
        return profile_training(cfg, split, tokenizer, model)
    prompts = make_prompts(cfg, split.pool, 64, 0, 1)
    steps = 32
    print("rows | ms per decode step")
    for rows in (1, 8, 32, 64):
        c = build_config(cfg.to_dict(), overrides=[f"sampling.batch_size={rows}", f"sampling.max_new_tokens={steps}"])
        seconds = best_of(lambda: generate(model, tokenizer, prompts[:rows], c, 1), reps=3)
        print(f"{rows} | {1000 * seconds / steps:.1f}")
    dtype = model.dtype
    hidden, inter = model.config.hidden_size, model.config.intermediate_size
    heads, kv = model.config.num_attention_heads, model.config.num_key_value_heads
    kv_dim = hidden // heads * kv
    shapes = [(hidden, hidden), (kv_dim, hidden), (inter, hidden), (hidden, inter), (model.config.vocab_size, hidden),
              (hidden + 2 * kv_dim, hidden), (2 * inter, hidden)]  # the last two: llama_decode's fused q/k/v and gate/up
    peak = matmul_peak(dtype)
    print(f"linear at 64 rows ({str(dtype).replace('torch.', '')}; 2048x2048 peak {peak:.0f} GFLOP/s) | F.linear GFLOP/s | prepacked GFLOP/s")
    packable = dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    for out_f, in_f in shapes:
        x, w = torch.randn(64, in_f).to(dtype), torch.randn(out_f, in_f).to(dtype)
        flops = 2 * 64 * in_f * out_f / 1e9
        plain = flops / best_of(lambda: torch.nn.functional.linear(x, w))
        packed = "-"
        if packable:
            pw = torch.ops.mkldnn._reorder_linear_weight(w, 64)
            packed = f"{flops / best_of(lambda: torch.ops.mkldnn._linear_pointwise(x, pw, None, 'none', [], '')):.0f}"
        print(f"{in_f} -> {out_f} | {plain:.0f} | {packed}")
    a = torch.ones(128 * 2 ** 20, dtype=torch.bfloat16)
    b = torch.empty_like(a)
    print(f"memory bandwidth (256 MB copy, read + write): {2 * a.numel() * 2 / best_of(lambda: b.copy_(a), reps=5) / 1e9:.1f} GB/s")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"weights streamed per decode step: {weights / 2 ** 20:.1f} MB")
    from torch.profiler import ProfilerActivity, profile

    c = build_config(cfg.to_dict(), overrides=["sampling.batch_size=64", f"sampling.max_new_tokens={steps}"])
    generate(model, tokenizer, prompts, c, 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        generate(model, tokenizer, prompts, c, 1)
    print(f"where a 64-row decode step's time goes ({steps} steps, torch.profiler, self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main(sys.argv[1:])
