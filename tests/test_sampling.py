"""The sampler's top-p rule against transformers' own ``TopPLogitsWarper``, and its draws.

    .venv/bin/python -m pytest -q tests/test_sampling.py
"""

from __future__ import annotations

import pytest
import torch
from transformers import TopPLogitsWarper

from madbench.generation.sampling import nucleus_sample

from conftest import tiny_with_adapter


def _nucleus_like_transformers(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean mask of the tokens transformers' warper keeps (finite scores)."""
    return torch.isfinite(TopPLogitsWarper(top_p)(None, scores.clone()))


def _support(scores: torch.Tensor, top_p: float, draws: int) -> torch.Tensor:
    """Mask of every token nucleus_sample drew for each row in ``draws`` tries."""
    seen = torch.zeros_like(scores, dtype=torch.bool)
    for _ in range(draws):
        tok = nucleus_sample(scores, top_p)
        seen[torch.arange(scores.shape[0]), tok] = True
    return seen


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.99])
def test_draws_stay_inside_transformers_nucleus(top_p):
    torch.manual_seed(0)
    # peaked rows (small nucleus, rejections are rare) and flat rows (large nucleus, frequent redraws)
    scores = torch.cat([torch.randn(6, 300) * 8, torch.randn(6, 300) * 0.3])
    allowed = _nucleus_like_transformers(scores, top_p)
    seen = _support(scores, top_p, draws=400)
    assert not (seen & ~allowed).any(), "drew a token outside the top-p nucleus"
    # and it keeps no fewer tokens than transformers': every nucleus token with >= 2% mass is drawn
    likely = allowed & (torch.softmax(scores, -1) >= 0.02)
    assert likely.any() and not (likely & ~seen).any(), "never drew a likely token of the nucleus"


def test_draw_frequencies_match_the_renormalised_nucleus():
    torch.manual_seed(1)
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.0, -1.0, -3.0]])
    probs = torch.softmax(logits, -1)[0]
    allowed = _nucleus_like_transformers(logits, 0.8)[0]
    expected = torch.where(allowed, probs, torch.zeros_like(probs))
    expected = expected / expected.sum()
    n = 20000
    draws = nucleus_sample(logits.expand(n, -1), 0.8)  # 1 - 0.8 of the mass is outside: many redraws
    freq = torch.bincount(draws, minlength=6).float() / n
    assert torch.allclose(freq, expected, atol=0.015), (freq, expected)


def test_top_p_one_samples_the_whole_distribution_and_seed_fixes_draws():
    scores = torch.randn(4, 50)
    torch.manual_seed(3)
    a = nucleus_sample(scores, 1.0)
    torch.manual_seed(3)
    b = nucleus_sample(scores, 1.0)
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = nucleus_sample(scores, 0.9)
    torch.manual_seed(3)
    assert torch.equal(c, nucleus_sample(scores, 0.9))


def test_ties_at_the_nucleus_edge_follow_the_warper_averaged_over_tie_order():
    # bf16 logits tie often; two tokens of equal probability straddle top_p and only one fits:
    # the warper keeps one of them (which one depends on the sort), so each is kept half the time
    logits = torch.tensor([[3.0, 1.0, 1.0, -2.0, -2.0]])
    probs = torch.softmax(logits, -1)[0]
    top_p = float(probs[0] + probs[1] / 2)
    for order in ([0, 1, 2, 3, 4], [0, 2, 1, 3, 4]):  # the warper's result for either order of the tie
        permuted = logits[:, order]
        kept = _nucleus_like_transformers(permuted, top_p)[0]
        assert int(kept.sum()) == 2
    expected = torch.tensor([probs[0], probs[1] / 2, probs[2] / 2, 0, 0]) / (probs[0] + probs[1])
    torch.manual_seed(2)
    n = 20000
    freq = torch.bincount(nucleus_sample(logits.expand(n, -1), top_p), minlength=5).float() / n
    assert torch.allclose(freq, expected, atol=0.015), (freq, expected)


@pytest.mark.parametrize("step", ["model", "llama_decoder"])
def test_greedy_decode_loop_equals_model_generate_tokens(madbench_cache, step):
    """madbench's static-cache decode loop, made greedy (top_k=1), gives model.generate's greedy tokens,
    through the model's forward and through madbench's Llama decoder (madbench/models/llama_decode.py).

    A KV cache passed under the wrong argument name (transformers 4.x calls it past_key_values,
    5.x cache) is swallowed by **kwargs: each step would then see one token and diverge here."""
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import load_base, resolve_model
    from madbench.config.presets import PRESETS
    from madbench.generation.sampling import _processors, _sample_batch, cache_argument, encode_prompts
    from madbench.models.llama_decode import llama_decoder

    cfg = build_config(PRESETS.get("smoke")(), None, ["sampling.top_k=1", "sampling.max_new_tokens=24"])
    split = load_split(cfg)
    tokenizer, model = load_base(resolve_model(cfg, split), cfg)
    assert cache_argument(model) in ("cache", "past_key_values")
    prompts = [" ".join(d.text.split()[:n]) for d, n in zip(split.pool[:6], (2, 8, 5, 8, 3, 1))]
    encoded = encode_prompts(tokenizer, prompts)
    width, pad = max(map(len, encoded)), tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
    with torch.no_grad():
        decoder = llama_decoder(model, width + 24) if step == "llama_decoder" else None
        assert (decoder is None) == (step == "model")
        ours = _sample_batch(model, ids, mask, 24, _processors(cfg.sampling, []), 1.0, pad, tokenizer.eos_token_id, decoder)
        theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=24,
                                pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
    assert ours.shape[1] > width + 8
    for row in range(len(prompts)):  # up to each row's EOS (generate pads after it; so does the loop)
        a, b = ours[row, width:].tolist(), theirs[row, width:].tolist()
        assert a[: len(b)] == b[: len(a)], (prompts[row], a, b)


def test_llama_decoder_logits_equal_the_models_forward_step_by_step(madbench_cache):
    """Left-padded prefill and five decode steps of the tiny model with a LoRA adapter folded in: the decoder's
    last-position logits equal transformers' forward over the whole sequence so far (fp32: rounding only), and a
    decoder that ignores the padding mask does not (the comparison can fail)."""
    from madbench.generation.sampling import encode_prompts
    from madbench.models.inference import merged_lora
    from madbench.models.llama_decode import llama_decoder

    _, split, tokenizer, model = tiny_with_adapter()
    encoded = encode_prompts(tokenizer, [" ".join(d.text.split()[:n]) for d, n in zip(split.pool[:4], (1, 9, 4, 6))])
    width, pad = max(map(len, encoded)), tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
    worst, unmasked = 0.0, 0.0
    with torch.no_grad(), merged_lora(model):
        decoder = llama_decoder(model, width + 8)
        assert decoder is not None
        cache, blind = decoder.new_cache(4, width + 8), decoder.new_cache(4, width + 8)
        seq, step, start = ids, ids, 0
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        for _ in range(6):
            ours = decoder.forward(step, pos, mask, cache, start)
            ignoring_padding = decoder.forward(step, pos, torch.ones_like(mask), blind, start)
            theirs = model(input_ids=seq, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
            worst = max(worst, float((ours - theirs).abs().max()))
            unmasked = max(unmasked, float((ignoring_padding - theirs).abs().max()))
            start += step.shape[1]
            nxt = ours.argmax(-1)
            seq, mask = torch.cat([seq, nxt[:, None]], 1), torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            step, pos = nxt[:, None], pos[:, -1:] + 1
    print(f"max |logit difference| {worst:.2e}; ignoring the padding mask {unmasked:.2e}")
    assert worst < 1e-4
    assert unmasked > 1e-2


def test_sampling_draws_the_same_texts_through_either_step(madbench_cache, monkeypatch):
    """Same seed, same prompts: generate() through the decoder and through the model's forward draws the same texts
    (the logits agree to rounding, so the same uniform draws pick the same tokens)."""
    from madbench.generation.sampling import generate, make_prompts

    cfg, split, tokenizer, model = tiny_with_adapter()
    prompts = make_prompts(cfg, split.pool, 12, 0, 1)
    texts = {}
    for mode in ("hf", "fast"):
        monkeypatch.setenv("MADBENCH_DECODE", mode)
        texts[mode] = generate(model, tokenizer, prompts, cfg, 7)
    assert texts["fast"] == texts["hf"] and len({c.continuation for c in texts["hf"]}) > 1


@pytest.mark.parametrize("low, high", [("generation.vllm_backend", "sampling"), ("models.tiny", "base_model")])
def test_the_lower_module_imports_nothing_from_the_one_that_dispatches_to_it(low, high):
    """No import cycle: sampling -> vllm_backend and base_model -> tiny, never back (not even inside a function)."""
    import ast
    import importlib.util
    from pathlib import Path

    tree = ast.parse(Path(importlib.util.find_spec(f"madbench.{low}").origin).read_text())
    imported = {(node.module or "").split(".")[-1] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name.split(".")[-1] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert high not in imported, f"madbench.{low} imports {high}"
