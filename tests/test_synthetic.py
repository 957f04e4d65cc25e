"""Synthetic means generated (issue 26): a sample is its continuation, with its prompt and source kept apart.

    .venv/bin/python -m pytest -q tests/test_synthetic.py

Prompts are distinct pool documents while the pool allows; greedy and beam decoding then write no
duplicates at generation 0; ``sampling.min_new_tokens`` holds in both decode paths; a fully synthetic
chain trains on continuations only, and ``sampling.keep_prompt=true`` trains on prompt + continuation
with the prompt's tokens out of the loss. Real tiny model, real runs (the session's smoke run).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from conftest import cli, one_line_error

from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.data.corpus import HUMAN, Doc
from madbench.errors import MadbenchError

CHAIN = "fully_synthetic-replace-s0"


def old_prompts(cfg, pool, n, seed, generation):
    """madbench's prompt draw before issue 26: with replacement from the pool."""
    rng = random.Random(f"prompts:{seed}:{generation}")
    return [" ".join(pool[rng.randrange(len(pool))].text.split()[: cfg.data.prompt_words]) for _ in range(n)]


def rows(folder: Path):
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------- prompts
def test_prompts_are_distinct_documents_while_the_pool_allows_then_even_passes():
    from madbench.generation.sampling import draw_prompts

    cfg = build_config(PRESETS.get("smoke")(), None, [])
    pool = [Doc(f"h{i:03d}", f"word{i} " * 12, HUMAN) for i in range(24)]
    for n in (10, 24):
        drawn = draw_prompts(cfg, pool, n, 0, 1)
        assert len({p.source for p in drawn}) == n  # without replacement
        assert all(p.text == " ".join(pool[int(p.source[1:])].text.split()[:8]) for p in drawn)
    assert len(set(old_prompts(cfg, pool, 24, 0, 1))) < 24  # the old draw repeated prompts at this size
    small = pool[:10]
    drawn = draw_prompts(cfg, small, 25, 0, 1)
    assert sorted(Counter(p.source for p in drawn).values()) == [2] * 5 + [3] * 5  # as even as 25 / 10 allows
    assert len({p.source for p in drawn[:10]}) == len({p.source for p in drawn[10:20]}) == 10  # whole passes
    assert draw_prompts(cfg, pool, 24, 0, 1) == draw_prompts(cfg, pool, 24, 0, 1) != draw_prompts(cfg, pool, 24, 0, 2)
    # a top-up round continues the stream: its prompts are not the earlier rounds' ones
    assert draw_prompts(cfg, pool, 6, 3, 1) + draw_prompts(cfg, pool, 6, 3, 1, start=6) == draw_prompts(cfg, pool, 12, 3, 1)
    none = build_config(PRESETS.get("smoke")(), None, ["sampling.prompt=none"])
    assert {(p.text, p.source) for p in draw_prompts(none, pool, 5, 0, 1)} == {("", None)}


# ---------------------------------------------------------------------- decoding
def test_beam_search_from_a_pool_as_large_as_num_samples_repeats_no_prompt(tiny):
    """Beam search is deterministic: the old draw's repeated prompts were duplicate samples (prompt and continuation
    alike); distinct prompts leave none. What the continuations alone repeat is the model's own doing (printed: the
    tiny model loops on 'the LORD, and' whatever the prompt)."""
    import dataclasses

    from madbench.generation.sampling import generate, make_prompts
    from madbench.metrics.repetition import duplicate_rate

    cfg, split, tokenizer, model = tiny
    cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, num_beams=2))
    n = cfg.sampling.num_samples
    assert len(split.pool) >= n
    new = generate(model, tokenizer, make_prompts(cfg, split.pool, n, 0, 0), cfg, 1)
    old = generate(model, tokenizer, old_prompts(cfg, split.pool, n, 0, 0), cfg, 1)

    def samples(done):
        return [f"{c.prompt} {c.continuation}" for c in done]

    print(f"beam search: duplicate samples {duplicate_rate(samples(old)):.3f} with the old draw, "
          f"{duplicate_rate(samples(new)):.3f} now; duplicate continuations {duplicate_rate([c.continuation for c in old]):.3f}, "
          f"{duplicate_rate([c.continuation for c in new]):.3f}")
    assert duplicate_rate(samples(new)) == 0.0
    assert duplicate_rate(samples(old)) > 0.1


class _PreferEos:
    """A logits processor that makes EOS by far the likeliest next token (so a sample ends at once unless kept from it)."""

    def __init__(self, eos: int):
        self.eos = eos

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.eos] += 50.0
        return scores


@pytest.mark.parametrize("beams", [1, 2])
def test_min_new_tokens_keeps_eos_away_in_the_decode_loop_and_in_beam_search(tiny, beams):
    import dataclasses

    from madbench.generation.sampling import generate

    cfg, split, tokenizer, model = tiny
    prompts = [" ".join(d.text.split()[:8]) for d in split.pool[:6]]
    counts = {}
    for least in (0, 7):
        c = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, num_beams=beams, min_new_tokens=least))
        done = generate(model, tokenizer, prompts, c, 1, [_PreferEos(tokenizer.eos_token_id)])
        counts[least] = [s.new_tokens for s in done]
        assert [s.prompt for s in done] == prompts
    assert counts[0] == [0] * 6  # EOS first: the test can fail
    assert counts[7] == [7] * 6  # at least 7 new tokens, then EOS at once


# ---------------------------------------------------------------------- keep_prompt's loss mask
def test_keep_prompt_packs_the_same_tokens_and_masks_only_the_prompt(tiny):
    from madbench.loop.steps import training_texts
    from madbench.training.packing import pack, pack_documents, target_tokens

    _, split, tokenizer, _ = tiny
    docs = [Doc(f"g000-{i:05d}", " ".join(d.text.split()[8:30]), prompt=" ".join(d.text.split()[:8]), prompt_source=d.id)
            for i, d in enumerate(split.pool[:6])] + split.pool[6:8]
    texts, chars = training_texts(docs, keep_prompt=True)
    assert texts[:6] == [f"{d.prompt} {d.text}" for d in docs[:6]] and texts[6:] == [d.text for d in docs[6:]]
    plain_ids, plain_labels, plain_n = pack_documents(tokenizer, texts, 64)
    ids, labels, n = pack_documents(tokenizer, texts, 64, chars)
    assert torch.equal(ids, plain_ids) and n == plain_n  # the same tokens in the same blocks
    flat, trained, real = ids.view(-1).tolist(), (labels != -100).view(-1).tolist(), (plain_labels != -100).view(-1).tolist()
    starts = [i for i, t in enumerate(flat) if t == tokenizer.bos_token_id] + [n]
    assert len(starts) == len(docs) + 1 and all(real[:n]) and not any(real[n:])
    for doc, a, b in zip(docs, starts, starts[1:]):  # each document: its prompt (and BOS) masked, the rest trained on
        masked = [t for t, keep in zip(flat[a:b], trained[a:b]) if not keep]
        kept = [t for t, keep in zip(flat[a:b], trained[a:b]) if keep]
        assert tokenizer.decode(masked, skip_special_tokens=True).split() == doc.prompt.split()
        assert tokenizer.decode(kept, skip_special_tokens=True).split() == doc.text.split()
        assert kept[-1] == tokenizer.eos_token_id and (masked[:1] == [tokenizer.bos_token_id]) == bool(doc.prompt)
    assert target_tokens(labels) < target_tokens(plain_labels)
    assert pack(tokenizer, texts, 64)[1].tolist() == plain_labels.tolist()  # no prompt_chars: unchanged
    assert training_texts(docs, keep_prompt=False) == ([d.text for d in docs], [0] * 8)


# ---------------------------------------------------------------------- real runs
def test_a_fully_synthetic_chain_trains_on_continuations_only(smoke_run):
    """The smoke run (3 generations): no mix holds a prompt's text; every sample records its prompt and source."""
    from madbench.config.run_config import from_dict
    from madbench.data.corpus import load_split

    cfg = from_dict(json.loads((smoke_run / "config.json").read_text())["config"])
    pool = {d.id: d.text for d in load_split(cfg).pool}
    chain = smoke_run / "chains" / CHAIN
    samples = {g: rows(chain / f"gen_{g:03d}") for g in range(3)}
    prompts = [r["prompt"] for g in samples for r in samples[g]]
    for g, got in samples.items():
        assert len({r["source"] for r in got}) == len(got) == 24  # distinct source documents: a pool of 24
        for r in got:
            assert r["prompt"] and pool[r["source"]].startswith(r["prompt"]) and r["prompt"] not in r["text"]
    for g in (1, 2):
        meta = json.loads((chain / f"gen_{g:03d}" / "meta.json").read_text())
        mix = json.loads((chain / f"gen_{g:03d}" / "mix.json").read_text())["documents"]
        texts = {r["id"]: r["text"] for r in samples[g - 1]}
        assert {d["source"] for d in mix} == {"synthetic"} and all(d["id"] in texts for d in mix)
        assert not [p for d in mix for p in prompts if p in texts[d["id"]]]  # no prompt's text in the training mix
        assert meta["prompt_share"] == 0.0 and meta["duplicate_rate"] == meta["metrics"]["duplicate_rate"]


@pytest.fixture(scope="module")
def keep_prompt_run(tmp_path_factory, madbench_cache) -> Path:
    """One fully synthetic generation with sampling.keep_prompt=true and beam search (a pool of num_samples)."""
    out = tmp_path_factory.mktemp("runs") / "keep"
    proc = cli("run", "--preset", "smoke", "loop.regimes=[fully_synthetic]", "loop.generations=1", "sampling.keep_prompt=true",
               "sampling.num_beams=2", "eval.tasks=[]", "eval.metrics=[perplexity,duplicate_rate]", "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_keep_prompt_trains_on_the_prompt_without_a_loss_on_it(keep_prompt_run, tiny):
    from madbench.data.corpus import MODEL
    from madbench.loop.steps import training_texts
    from madbench.metrics.repetition import duplicate_rate
    from madbench.training.packing import pack, target_tokens

    _, _, tokenizer, _ = tiny
    results = json.loads((keep_prompt_run / "results.json").read_text())
    assert results["config"]["sampling"]["keep_prompt"] is True
    gens = results["chains"][0]["generations"]
    chain = keep_prompt_run / "chains" / CHAIN
    samples = rows(chain / "gen_000")
    assert len({r["source"] for r in samples}) == len(samples)  # beam search from distinct prompts: no repeated sample
    assert gens[0]["duplicate_rate"] == pytest.approx(duplicate_rate([r["text"] for r in samples]))  # of the continuations
    docs = [Doc(r["id"], r["text"], MODEL, prompt=r["prompt"], prompt_source=r["source"]) for r in samples]
    texts, chars = training_texts(docs, True)
    words = sum(len(t.split()) for t in texts)
    assert gens[1]["prompt_share"] == pytest.approx(sum(len(r["prompt"].split()) for r in samples) / words)
    assert 0 < gens[1]["prompt_share"] < 1
    # what generation 1 trained on: the prompts' tokens were in the mix but not loss targets
    meta = json.loads((chain / "gen_001" / "meta.json").read_text())
    _, labels = pack(tokenizer, texts, 64, chars)
    _, plain = pack(tokenizer, texts, 64)
    assert meta["train"]["mix_tokens_trained"] == target_tokens(labels) < target_tokens(plain)


@pytest.mark.slow
def test_resuming_a_folder_of_the_old_sample_format_is_one_line(smoke_run, tmp_path):
    """Samples written before issue 26 (prompt + continuation in 'text', no 'prompt') are never trained on as synthetic."""
    from madbench.results import fileio, integrity

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    shutil.rmtree(run / "chains" / CHAIN / "gen_002")
    gen1 = run / "chains" / CHAIN / "gen_001"
    fileio.write_jsonl(gen1 / "samples.jsonl", [{"id": r["id"], "text": f"{r['prompt']} {r['text']}", "kept": r["kept"]}
                                                for r in rows(gen1)])
    meta = json.loads((gen1 / "meta.json").read_text())
    meta["integrity"] = integrity.record(gen1)  # sealed as the old madbench sealed it: not damage, an old format
    fileio.write_json(gen1 / "meta.json", meta)
    one_line_error(cli("run", "--resume", run), "samples.jsonl", "older madbench", "new --output-dir")


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("overrides,needle", [
    (["sampling.keep_prompt=true", "sampling.prompt=none"], "sampling.keep_prompt=true keeps the real prompt"),
    (["sampling.min_new_tokens=40"], "sampling.min_new_tokens=40 is over sampling.max_new_tokens=32"),
    (["sampling.min_new_tokens=-1"], "sampling.min_new_tokens = -1 is outside [0, ...]"),
])
def test_sampling_options_that_make_no_sense_are_one_line(overrides, needle):
    with pytest.raises(MadbenchError, match="^" + needle.replace("[", r"\[").replace(".", r"\.")):
        build_config(PRESETS.get("smoke")(), None, overrides)
    one_line_error(cli("run", "--dry-run", "--preset", "smoke", *overrides), needle)
