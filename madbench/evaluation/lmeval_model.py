"""lm-eval's model interface on madbench's forward: the model that scores a generation's lm-eval tasks.

    madbench run --preset smoke                              # eval.lm_eval_model=madbench (the default)
    madbench run --preset smoke eval.lm_eval_model=hf        # lm-eval's own HFLM, for comparison
    madbench bench --lm-eval model.name=tiny                 # seconds per evaluation, HFLM vs this

``MadbenchLM`` is registered with lm-eval as ``madbench``. It subclasses lm-eval's
``TemplateLM``, so the tokenization of (context, continuation) pairs, empty contexts
and rolling windows is lm-eval's own, and it answers the three request types as
HFLM does (same truncation, same ``is_greedy``), but faster:

- the LoRA is folded into the weights for the duration (:func:`madbench.models.inference.merged_lora`);
- requests are scored in length-sorted batches of ``eval.batch_size``; a request whose
  input (context + continuation minus its last token) is a prefix of another's is scored
  from that one's forward pass (HFLM's one-token ``group_by="contexts"`` trick, generalized),
  and requests that share a context (a multiple-choice question's choices) run it once, into
  a KV cache that each continuation then reads (left-padded, positions of real tokens only);
- the LM head and an fp32 log-softmax run only at the continuation positions, not over
  the full vocabulary at every position of the padded batch;
- rolling-loglikelihood windows of all documents are sorted and batched together.

``generate_until`` runs ``model.generate`` (greedy unless the task asks otherwise) with
lm-eval's stop-sequence handling, as HFLM does.
"""

from __future__ import annotations

import torch
from lm_eval import utils as lm_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import (DEFAULT_MAX_LENGTH, Collator, _add_special_kwargs, handle_stop_sequences,
                                  has_bos_prefix, normalize_gen_kwargs, postprocess_generated_text, resolve_max_length)
from lm_eval.models.utils_hf import stop_sequences_criteria

from madbench.models.inference import merged_lora  # skips adapters already folded or switched off: safe to nest

MIN_SHARED = 8  # shorter shared contexts (a rolling window's 1 prefix token) are not worth a second pass
HEAD_ROWS = 2048  # continuation positions per LM-head call: bounds the fp32 (rows x vocab) block in memory


@register_model("madbench")
class MadbenchLM(TemplateLM):
    """An in-memory causal LM (plain or peft) and its tokenizer, scored through madbench's forward."""

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int | None = None,
                 add_bos_token: bool | None = None, scores=None):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.scores = scores  # the model's ScoreCache (madbench/models/scores.py), or None
        self.batch_size = int(batch_size)
        self.add_bos_token = add_bos_token
        self._max_length = max_length
        self.batch_sizes: dict = {}
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    # ------------------------------------------------------------------ what lm-eval asks of a model
    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        if not self._max_length:  # HFLM's: the model config's context length, else the tokenizer's, else 2048
            self._max_length = resolve_max_length(self.model.config, self.tokenizer, default=DEFAULT_MAX_LENGTH)
        return self._max_length

    @property
    def max_gen_toks(self) -> int:
        return 256

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name_or_path.replace("/", "__")

    def get_model_info(self) -> dict:
        """The keys HFLM writes into results.json's config (no hub lookup: the model is in memory)."""
        return {"model_num_parameters": sum(p.numel() for p in self.model.parameters()),
                "model_dtype": next(self.model.parameters()).dtype, "model_revision": "main", "model_sha": ""}

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                   **kwargs) -> list[int]:
        """HFLM's encoding: the tokenizer's default special tokens unless the string starts with BOS already."""
        special = _add_special_kwargs(add_special_tokens, self.add_bos_token)
        if add_special_tokens is None and has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id)):
            special["add_special_tokens"] = False
        encoding = self.tokenizer.encode(string, **special)
        return encoding[-left_truncate_len:] if left_truncate_len else encoding

    # ------------------------------------------------------------------ loglikelihood
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        """(sum of continuation log-probs, is_greedy) per (strings, context_enc, continuation_enc) request."""
        inputs, spans, shared = [], [], []
        for _, context_enc, continuation_enc in requests:
            assert context_enc and continuation_enc and len(continuation_enc) <= self.max_length
            # HFLM: left-truncate to max_length + 1 tokens, then drop the last (it is only predicted)
            whole = (context_enc + continuation_enc)[-(self.max_length + 1):]
            inputs.append(tuple(whole[:-1]))
            spans.append(len(continuation_enc))
            shared.append(len(context_enc) if len(whole) == len(context_enc) + len(continuation_enc) else len(whole) - 1)
        guests: dict = {}
        for i, host in enumerate(_prefix_hosts(inputs)):
            guests.setdefault(host, []).append(i)
        by_context: dict = {}  # hosts that share their context tokens: the context runs once, into a KV cache
        for host in guests:
            by_context.setdefault(inputs[host][: shared[host]], []).append(host)
        groups = [(ctx, hosts) for ctx, hosts in by_context.items() if len(hosts) > 1 and len(ctx) >= MIN_SHARED]
        groups += [(inputs[h], [h]) for ctx, hosts in by_context.items() if len(hosts) == 1 or len(ctx) < MIN_SHARED
                   for h in hosts]
        groups.sort(key=lambda g: (-max(len(inputs[h]) for h in g[1]), g[0]))  # longest first, as HFLM
        answers = [None] * len(requests)
        with torch.no_grad(), merged_lora(self.model):
            for batch in _batches(groups, self.batch_size):
                members = [(g, h) for g, (_, hosts) in enumerate(batch) for h in hosts]
                scored_ids = [(r, i) for r, (_, h) in enumerate(members) for i in guests[h]]
                scored = self._score(batch, [inputs[h] for _, h in members], [g for g, _ in members],
                                     [(r, len(inputs[i]) - spans[i], len(inputs[i])) for r, i in scored_ids],
                                     [list(requests[i][2][-spans[i]:]) for _, i in scored_ids])
                for (_, i), answer in zip(scored_ids, scored):
                    answers[i] = answer
                    if requests[i][0] is not None:
                        self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
        return answers

    def _score(self, groups, seqs, group_of, spans, targets):
        """Score a batch: each group's shared prefix in one left-padded pass into a KV cache, then each member
        sequence's rest on that cache; per span (member, start, end) the log-prob sum of its targets at
        positions start..end-1 and whether each target is the argmax there."""
        pad, dev = self.tokenizer.pad_token_id, self.device
        width = max(len(p) for p, _ in groups)
        ids = torch.full((len(groups), width), pad, dtype=torch.long)
        mask = torch.zeros((len(groups), width), dtype=torch.long)
        for g, (prefix, _) in enumerate(groups):
            ids[g, width - len(prefix):], mask[g, width - len(prefix):] = torch.tensor(prefix), 1
        rests = [seq[len(groups[g][0]):] for seq, g in zip(seqs, group_of)]
        live = [r for r, rest in enumerate(rests) if rest]  # members with tokens after their group's prefix
        slot = {r: k for k, r in enumerate(live)}
        rest_width = max((len(rests[r]) for r in live), default=0)
        hidden, cache, head = self._body(ids.to(dev), mask.to(dev), bool(live))
        parts = [hidden.reshape(-1, hidden.shape[-1])]
        if live:
            index = torch.tensor([group_of[r] for r in live])
            cache.reorder_cache(index.to(dev))  # each live member gets its group's prefix keys and values
            ids2 = torch.full((len(live), rest_width), pad, dtype=torch.long)
            for k, r in enumerate(live):
                ids2[k, : len(rests[r])] = torch.tensor(rests[r], dtype=torch.long)
            mask2 = torch.cat([mask[index], torch.ones_like(ids2)], 1)
            starts = torch.tensor([len(groups[group_of[r]][0]) for r in live])
            hidden2, _, _ = self._body(ids2.to(dev), mask2.to(dev), True, cache, starts[:, None] + torch.arange(rest_width))
            parts.append(hidden2.reshape(-1, hidden2.shape[-1]))
        hidden = torch.cat(parts) if len(parts) > 1 else parts[0]

        def row(member, p):  # hidden row of position p of a member sequence: in its prefix, or in its rest
            g, n = group_of[member], len(groups[group_of[member]][0])
            return g * width + width - n + p if p < n else len(groups) * width + slot[member] * rest_width + p - n

        flat = torch.tensor([row(m, p) for m, a, b in spans for p in range(a, b)], device=dev)
        target = torch.tensor([t for ts in targets for t in ts], device=dev)
        logp, greedy = [], []
        for k in range(0, len(flat), HEAD_ROWS):  # the head and the fp32 log-softmax at these positions only
            lsm = torch.log_softmax(head(hidden[flat[k: k + HEAD_ROWS]]).float(), dim=-1)
            tgt = target[k: k + HEAD_ROWS]
            logp.append(lsm.gather(1, tgt[:, None])[:, 0])
            greedy.append(lsm.argmax(dim=-1) == tgt)
        sizes = [b - a for _, a, b in spans]
        return [(float(s.sum()), bool(g.all())) for s, g in zip(torch.cat(logp).split(sizes), torch.cat(greedy).split(sizes))]

    def _body(self, ids, mask, use_cache: bool, cache=None, positions=None):
        """(last hidden states, KV cache, LM head) of a batch; the caller applies the head to the rows it needs.
        Position ids count real tokens only, so left padding changes nothing. A model whose causal-LM forward
        does more than ``head(hidden)`` (soft-capped logits) gives its logits and an identity head."""
        from transformers import DynamicCache

        from madbench.generation.sampling import cache_argument

        if positions is None:
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if use_cache and cache is None:
            cache = DynamicCache()  # filled in place by the forward pass
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        plain = head is None or decoder is None or decoder is base or getattr(base.config, "final_logit_softcapping", None)
        module = self.model if plain else decoder
        kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=positions.to(ids.device), use_cache=use_cache)
        if cache is not None:
            kwargs[cache_argument(module)] = cache  # 'cache' (transformers 5) or 'past_key_values' (4.x)
        out = module(**kwargs)
        return (out.logits, cache, torch.nn.Identity()) if plain else (out.last_hidden_state, cache, head)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """HFLM's disjoint rolling windows (prefix token, 1 token of context); all documents' windows batched together.

        A window that is a whole sequence the perplexity metric has just scored into ``scores`` (a held-out
        document under BOS: madbench_wikitext's) takes its log-probabilities from there instead of a second
        forward pass (:func:`madbench.metrics.perplexity.remembered_sequence_logp`).
        """
        from madbench.metrics.perplexity import remembered_sequence_logp

        windows, owner, lls = [], [], []
        for k, (string,) in enumerate(req.args for req in requests):
            for ctx, cont in map(lm_utils.make_disjoint_window, lm_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                known = remembered_sequence_logp(self.scores, ctx + cont) if len(ctx) == 1 else None
                if known is None:
                    windows.append((None, ctx, cont))
                owner.append(k)
                lls.append(None if known is None else float(torch.tensor(known, dtype=torch.float32).sum()))
        scores = iter(self._loglikelihood_tokens(windows) if windows else [])
        totals = [0.0] * len(requests)
        for k, ll in zip(owner, lls):  # summed in window order, as HFLM
            totals[k] += next(scores)[0] if ll is None else ll
        for req, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """``model.generate`` on left-padded batches of contexts sharing generation arguments; text cut at ``until``."""
        res = []
        groups = Collator([req.args for req in requests], sort_fn=lambda r: (-len(self.tok_encode(r[0])), r[0]),
                          group_by="gen_kwargs", group_fn=lambda r: r[1])
        eos = self.tokenizer.decode(self.eot_token_id, skip_special_tokens=False)
        with torch.no_grad(), merged_lora(self.model):
            for chunk in groups.get_batched(n=self.batch_size):
                contexts, all_kwargs = zip(*chunk)
                kwargs = normalize_gen_kwargs(dict(all_kwargs[0]), self.max_gen_toks)
                until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
                max_gen = kwargs.pop("max_gen_toks")
                ids, mask = self._left_padded(contexts, self.max_length - max_gen)
                kwargs["temperature"] = kwargs.get("temperature", 0.0)  # HFLM: temperature 0 means greedy
                if kwargs["temperature"] == 0.0 and kwargs.get("do_sample") is None:
                    kwargs["do_sample"] = False
                if kwargs.get("do_sample") is False and kwargs["temperature"] == 0.0:
                    kwargs.pop("temperature")
                out = self.model.generate(input_ids=ids, attention_mask=mask, max_length=ids.shape[1] + max_gen,
                                          stopping_criteria=stop_sequences_criteria(self.tokenizer, until, ids.shape[1],
                                                                                    ids.shape[0]),
                                          pad_token_id=self.tokenizer.pad_token_id, use_cache=True, **kwargs)
                for tokens, context, gen_kwargs in zip(out[:, ids.shape[1]:].tolist(), contexts, all_kwargs):
                    text = postprocess_generated_text(self.tokenizer.decode(tokens, skip_special_tokens=True), until, None)
                    res.append(text)
                    self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return groups.get_original(res)

    def _left_padded(self, contexts, max_ctx_len: int):
        encoded = [self.tok_encode(c, left_truncate_len=max_ctx_len) for c in contexts]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, width - len(e):] = torch.tensor(e, dtype=torch.long)
            mask[row, width - len(e):] = 1
        return ids.to(self.device), mask.to(self.device)


def _prefix_hosts(inputs) -> list[int]:
    """For each input, the index of an input it is a prefix of (itself when none), so that one forward
    pass scores both: causal attention makes the logits at positions < len(x) depend on x alone.
    In lexicographic order a prefix of anything is a prefix of its successor, so one backward sweep finds them."""
    order = sorted(range(len(inputs)), key=lambda i: inputs[i])
    hosts = list(range(len(inputs)))
    for pos in range(len(order) - 2, -1, -1):
        i, j = order[pos], order[pos + 1]
        if inputs[j][: len(inputs[i])] == inputs[i]:
            hosts[i] = hosts[j]
    return hosts


def _batches(groups, size: int):
    """Consecutive groups, at most ``size`` member sequences a batch (a larger group alone)."""
    batch, rows = [], 0
    for group in groups:
        if batch and rows + len(group[1]) > size:
            yield batch
            batch, rows = [], 0
        batch.append(group)
        rows += len(group[1])
    if batch:
        yield batch
