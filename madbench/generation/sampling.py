"""Batched sampling of synthetic documents from a generation's model.

    madbench bench                       # tokens/s of this path vs plain transformers

Prompts are the first ``data.prompt_words`` words of real training-pool documents
(or just BOS when ``sampling.prompt=none``), drawn without replacement: distinct source
documents while the pool has enough, else whole shuffled passes of it (:func:`draw_prompts`).
Each sample is a :class:`Completion`: its prompt, its continuation (the generated text
alone, which is what madbench trains on and scores as synthetic) and how many tokens were
generated; ``sampling.min_new_tokens`` keeps EOS out until that many are. Batches are
sorted by prompt length and left-padded; the RNG is seeded from (seed, generation) so a
resumed run samples exactly what an uninterrupted one would.

Speed (measured by ``madbench bench``): instead of ``model.generate`` the decode
loop below calls the model directly with a preallocated (static) KV cache and
keeps only the last position's logits; LoRA deltas are folded into the weights
for the duration of sampling (:func:`madbench.models.inference.merged_lora`), so a
decode step costs the same as the base model's. The sampling rule is transformers' own processors
(repetition penalty, the caller's processors, temperature, top-k) in the order
``generate`` applies them, then top-p by :func:`nucleus_sample`, which keeps the
same nucleus as ``TopPLogitsWarper`` without sorting the vocabulary (rejection
sampling from the whole distribution: the draws follow the same distribution as
``generate``'s, not the same random stream). Beam search still goes through
``model.generate``. On the CPU, attention is :mod:`madbench.models.attention`'s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List, Optional

import torch

from madbench.errors import MadbenchError
from tqdm.auto import tqdm

from madbench.data.corpus import Doc
from madbench.models.inference import merged_lora
from madbench.models.llama_decode import llama_decoder


@dataclass(frozen=True)
class Prompt:
    """A sampling prompt and the id of the real document it was cut from (None for ``sampling.prompt=none``)."""

    text: str
    source: Optional[str]


@dataclass(frozen=True)
class Completion:
    """One sample: the prompt it continued, the generated continuation (text) and its generated token count
    (up to, not counting, the EOS that ended it)."""

    prompt: str
    continuation: str
    new_tokens: int


def prompt_order(pool_size: int, n: int, seed: int, generation, start: int = 0) -> List[int]:
    """Pool indices ``start .. start + n`` of (seed, generation)'s prompt stream: whole shuffled passes of the
    pool, one after another, so the first ``pool_size`` are distinct and every document is used as evenly as
    ``n`` allows (a top-up round of a filtering mitigation continues where the earlier rounds stopped)."""
    rng = random.Random(f"prompts:{seed}:{generation}")
    order: List[int] = []
    while len(order) < start + n:
        passage = list(range(pool_size))
        rng.shuffle(passage)
        order.extend(passage)
    return order[start : start + n]


def draw_prompts(cfg, pool: List[Doc], n: int, seed: int, generation, start: int = 0) -> List[Prompt]:
    """``n`` prompts for (seed, generation): the first ``data.prompt_words`` words of distinct pool documents
    (:func:`prompt_order`); ``sampling.prompt=none``: ``n`` empty prompts (BOS alone)."""
    if cfg.sampling.prompt == "none":
        return [Prompt("", None)] * n
    picks = [pool[i] for i in prompt_order(len(pool), n, seed, generation, start)]
    return [Prompt(" ".join(d.text.split()[: cfg.data.prompt_words]), d.id) for d in picks]


def make_prompts(cfg, pool: List[Doc], n: int, seed: int, generation) -> List[str]:
    """The prompt texts of :func:`draw_prompts`."""
    return [p.text for p in draw_prompts(cfg, pool, n, seed, generation)]


def encode_prompts(tokenizer, prompts: List[str]) -> List[List[int]]:
    """Token ids of each prompt after BOS (EOS where the tokenizer has no BOS); an empty prompt is BOS alone."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [[bos] + tokenizer(p, add_special_tokens=False)["input_ids"] if p else [bos] for p in prompts]


def decode_completion(tokenizer, ids) -> str:
    """Token ids as text, special tokens dropped and whitespace normalised."""
    return " ".join(tokenizer.decode(ids, skip_special_tokens=True).split())


def completion(tokenizer, prompt: str, new_ids) -> Completion:
    """The sample of ``prompt`` whose generated ids are ``new_ids``: cut at the first EOS, decoded."""
    new_ids = [int(i) for i in new_ids]
    eos = tokenizer.eos_token_id
    eos = set([eos] if isinstance(eos, int) else list(eos or []))
    cut = next((k for k, i in enumerate(new_ids) if i in eos), len(new_ids))
    return Completion(prompt, decode_completion(tokenizer, new_ids[:cut]), cut)


def _processors(s, extra):
    """transformers' own processors in ``generate``'s order; top-p is applied by :func:`nucleus_sample`."""
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper

    procs = []
    if s.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
    procs.extend(extra)
    if s.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        procs.append(TopKLogitsWarper(s.top_k))
    return LogitsProcessorList(procs)


class NonFiniteLogits(MadbenchError):
    def __init__(self):
        super().__init__("the model's next-token scores hold NaN or inf, so no token can be drawn: the weights diverged "
                         "(train.learning_rate too high?) or a logits change overflowed (sampling.temperature too small, "
                         "a mitigation's logit bias such as watermark_filter.delta too large); lower them and resume")


def nucleus_sample(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Draw one token per row from softmax(scores) restricted to the top-p nucleus.

    The nucleus is the one transformers' ``TopPLogitsWarper`` keeps: in descending order
    of probability, a token is kept while the mass before it is below ``top_p`` (so the
    most probable token always is). Instead of sorting the vocabulary every step, it draws
    from the whole distribution by inverse CDF and redraws the rows whose token falls
    outside the nucleus (rejection sampling: what is accepted follows the renormalised
    nucleus exactly; a row is redrawn with probability ``1 - mass``, at most ``1 - top_p``).
    Tokens of equal probability (frequent with bf16 logits) that straddle the edge are
    ordered by the sort's whim in the warper; here each of the ``k`` tied tokens is kept
    with probability ``m / k`` when ``m`` of them fit, which is the warper's distribution
    averaged over the order of the ties. A round costs a cumulative sum and two passes
    over the vocabulary, several times less than sorting it on a 2-core CPU.
    """
    probs = torch.softmax(scores, dim=-1)
    cdf = probs.cumsum(-1)
    out, ok = _inverse_cdf_draw(probs, cdf, top_p)
    while not bool(ok.all()):
        rows = (~ok).nonzero()[:, 0]
        if not bool(torch.isfinite(cdf[rows, -1]).all()):  # a NaN row is never accepted: it would loop forever
            raise NonFiniteLogits()
        drawn, accepted = _inverse_cdf_draw(probs[rows], cdf[rows], top_p)
        out[rows[accepted]] = drawn[accepted]
        ok[rows[accepted]] = True
    return out


def _inverse_cdf_draw(probs: torch.Tensor, cdf: torch.Tensor, top_p: float):
    """One draw per row from ``probs`` (cumulative sums ``cdf``) and whether it is accepted into the top-p nucleus."""
    rows = probs.shape[0]
    u = torch.rand(rows, 1, device=probs.device) * cdf[:, -1:]
    token = torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[1] - 1)
    if top_p >= 1.0:
        return token[:, 0], torch.ones(rows, dtype=torch.bool, device=probs.device)
    p = probs.gather(1, token)
    before = (probs * (probs > p)).sum(-1)  # mass ranked strictly before the token
    tied = (probs == p).sum(-1)  # the token and its ties
    fit = torch.ceil((top_p - before) / p[:, 0]).clamp_(min=0)  # tied tokens the nucleus has room for
    accept = torch.rand(rows, device=probs.device) * tied < torch.minimum(fit, tied.to(fit.dtype))
    return token[:, 0], accept


def cache_argument(model) -> str:
    """The name under which the model's forward takes its KV cache: ``cache`` (transformers 5)
    or ``past_key_values`` (4.x). Passing the wrong one is silently swallowed by ``**kwargs``
    and the decode would run without its cache, so ask the class that owns the forward."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(inner).forward).parameters
    if "cache" in params:
        return "cache"
    if "past_key_values" in params:
        return "past_key_values"
    raise RuntimeError(f"{type(inner).__name__}.forward takes neither 'cache' nor 'past_key_values'; "
                       "madbench's decode loop needs a transformers causal LM")


def _model_step(model, length: int):
    """step(ids, mask, positions, start) -> last-position fp32 logits, through the model's forward and a static cache."""
    from transformers import StaticCache

    cache = {cache_argument(model): StaticCache(config=model.config, max_cache_len=length)}

    def step(ids, mask, pos, start):
        # Prefill keeps the last position by index: the int form slices a non-contiguous view, and a bf16
        # linear on it materialises the LM head once per row (1.8 GB of copies for 32 rows of SmolLM2).
        keep = torch.tensor([ids.shape[1] - 1], device=ids.device) if start == 0 else 1
        return model(input_ids=ids, attention_mask=mask, position_ids=pos, **cache, use_cache=True,
                     logits_to_keep=keep).logits[:, -1].float()

    return step


def _decoder_step(decoder, rows: int, length: int):
    """The same step through :class:`madbench.models.llama_decode.LlamaDecoder` and its own cache."""
    cache = decoder.new_cache(rows, length)
    return lambda ids, mask, pos, start: decoder.forward(ids, pos, mask, cache, start)


def _sample_batch(model, ids, mask, max_new: int, processors, top_p: float, pad: int, eos, decoder=None,
                  min_new: int = 0) -> torch.Tensor:
    """Ancestral sampling with a static KV cache; returns prompt + continuation ids. EOS cannot be drawn
    before ``min_new`` new tokens (what transformers' ``min_new_tokens`` does)."""
    length = ids.shape[1] + max_new
    step = _model_step(model, length) if decoder is None else _decoder_step(decoder, ids.shape[0], length)
    eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=ids.device)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    seq, step_ids, start = ids, ids, 0
    for made in range(max_new):
        logits = step(step_ids, mask, pos, start)
        start += step_ids.shape[1]
        scores = processors(seq, logits)
        if made < min_new and len(eos_ids):
            scores[:, eos_ids] = float("-inf")
        nxt = nucleus_sample(scores, top_p)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        done |= torch.isin(nxt, eos_ids)
        if bool(done.all()):
            break
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        pos, step_ids = pos[:, -1:] + 1, nxt[:, None]
    return seq


@torch.no_grad()
def generate(model, tokenizer, prompts: List[str], cfg, seed: int, logits_processors=(), desc="sampling") -> List[Completion]:
    """Return one :class:`Completion` (prompt, generated continuation, its token count) per prompt, in prompt order."""
    s = cfg.sampling
    encoded = encode_prompts(tokenizer, prompts)
    from madbench.generation.backends import backend

    other = backend(s.backend).generate_fn()  # None: this module's sampler (sampling.backend=hf)
    if other is not None:  # e.g. vllm_backend: token ids in, token ids out; it imports nothing from here
        return [completion(tokenizer, p, ids[len(e):])
                for p, e, ids in zip(prompts, encoded, other(model, encoded, cfg, seed, logits_processors))]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: List[Completion] = [Completion("", "", 0)] * len(prompts)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    processors = _processors(s, list(logits_processors))
    model.eval()
    bar = tqdm(total=len(prompts), desc=desc, unit="doc", leave=False, dynamic_ncols=True, disable=None)
    with merged_lora(model):
        decoder = None if s.num_beams > 1 else llama_decoder(model, max(map(len, encoded)) + s.max_new_tokens)
        for start in range(0, len(order), s.batch_size):
            idx = order[start : start + s.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            if s.num_beams > 1:
                from transformers import LogitsProcessorList

                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=s.max_new_tokens,
                                     min_new_tokens=s.min_new_tokens, do_sample=False, num_beams=s.num_beams,
                                     repetition_penalty=s.repetition_penalty,
                                     logits_processor=LogitsProcessorList(list(logits_processors)),
                                     pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            else:
                out = _sample_batch(model, ids, mask, s.max_new_tokens, processors, s.top_p, pad, tokenizer.eos_token_id,
                                    decoder, s.min_new_tokens)
            for row, i in enumerate(idx):
                outputs[i] = completion(tokenizer, prompts[i], out[row, width:])
            bar.update(len(idx))
    bar.close()
    return outputs
