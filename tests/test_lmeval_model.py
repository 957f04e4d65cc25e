"""lm-eval through madbench's forward (MadbenchLM) scores what lm-eval's HFLM scores, on every local task.

    .venv/bin/python -m pytest -q tests/test_lmeval_model.py

Tolerance: both models run the same fp32 tiny model (with a LoRA adapter whose B is not zero),
so per-token log-probs differ only by float rounding (different batch shapes and summation
order; MadbenchLM folds the LoRA into the weights, HFLM runs the adapter): about 1e-7 relative
per operation. The largest sums here (rolling loglikelihoods of whole passages) are a few
hundred nats, where one fp32 ulp is 3e-5; ``abs=1e-4`` plus ``1e-6`` relative allows a few ulps
and nothing more (dropping one continuation token moves a sum by nats: see the last test).

HFLM is run twice: with ``logits_cache=False`` (every request scored on its own) for the per-request
comparison, and as madbench's ``hf`` mode runs it (``logits_cache=True``) for the task metrics.
lm-eval 0.4.13's one-token cache gathers a grouped request's log-probs from the *leading*
positions of the group's longest continuation (its ``is_greedy`` uses the trailing ones), so a
``madbench_lambada`` request whose input equals a ``madbench_cloze`` choice's input gets a wrong
loglikelihood there; ``acc`` (is_greedy) and so every task metric is unaffected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from madbench.evaluation import lmeval
from madbench.config.run_config import build_config
from madbench.config.presets import PRESETS

from conftest import madbench, tiny_with_adapter

ABS, REL = 1e-4, 1e-6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The smoke preset's tiny model with a non-trivial LoRA adapter, and its local task configs."""
    cfg, split, tokenizer, model = tiny_with_adapter()
    configs = lmeval.build_task_data(list(lmeval.local_tasks()), split, cfg, tmp_path_factory.mktemp("lm_eval_data"))
    return cfg, split, tokenizer, model, configs


def evaluate(lm, setup):
    from lm_eval import simple_evaluate

    cfg, _, _, _, configs = setup
    return lmeval._evaluate(simple_evaluate, lm, list(configs.values()), [], cfg)


def responses(results, task):
    """[(loglikelihood, is_greedy or None)] per request, in lm-eval's document and request order."""
    out = []
    for sample in results["samples"][task]:
        for resp in sample["resps"]:
            r = resp[0]
            out.append((float(r[0]), bool(r[1])) if isinstance(r, (list, tuple)) else (float(r), None))
    return out


@pytest.fixture(scope="module")
def scored(setup):
    from lm_eval.models.huggingface import HFLM

    _, _, tokenizer, model, _ = setup
    hf_plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=16, softmax_dtype=torch.float32, logits_cache=False)
    return {"hf_plain": evaluate(hf_plain, setup), "hf": evaluate(lmeval.make_lm("hf", model, tokenizer, 16), setup),
            "madbench": evaluate(lmeval.make_lm("madbench", model, tokenizer, 16), setup)}


@pytest.mark.parametrize("task", ["madbench_cloze", "madbench_lambada", "madbench_wikitext"])
def test_every_request_scores_as_hflm(scored, task):
    ref, ours = responses(scored["hf_plain"], task), responses(scored["madbench"], task)
    assert len(ref) == len(ours) > 0
    diffs = [abs(a[0] - b[0]) for a, b in zip(ref, ours)]
    print(f"{task}: {len(diffs)} requests, max |loglikelihood difference| {max(diffs):.2e}")
    for (ll_ref, greedy_ref), (ll, greedy) in zip(ref, ours):
        assert ll == pytest.approx(ll_ref, abs=ABS, rel=REL)
        assert greedy == greedy_ref
    cached = responses(scored["hf"], task)  # HFLM as the run's hf mode runs it: the same is_greedy everywhere
    assert [g for _, g in cached] == [g for _, g in ours]


@pytest.mark.parametrize("task", ["madbench_cloze", "madbench_lambada", "madbench_wikitext"])
def test_task_metrics_equal_hflm(scored, task):
    for mode in ("hf", "hf_plain"):
        ref, ours = lmeval.flatten({task: scored[mode]["results"][task]}), lmeval.flatten({task: scored["madbench"]["results"][task]})
        assert set(ref) == set(ours) and ref
        for key in ref:  # perplexities: exp(-sum ll / units), so a sum's error ABS moves them by ~ABS/units relative
            assert ours[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-9), (mode, key)


def test_is_greedy_as_hflm_when_some_continuations_are_greedy(setup):
    """The tiny model never guesses a local task's target, so their is_greedy flags are all False: here half the
    continuations are the model's own greedy tokens, and both models flag exactly the same requests."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from madbench.evaluation.lmeval_model import MadbenchLM

    _, split, tokenizer, model, _ = setup
    requests = []
    for k, doc in enumerate(split.eval[:8]):
        context = " ".join(doc.text.split()[:6 + k])
        ids = torch.tensor([tokenizer.encode(context)])
        with torch.no_grad():
            out = model.generate(input_ids=ids, max_new_tokens=1 + k % 3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        requests += [Instance("loglikelihood", {}, (context, tokenizer.decode(out[0, ids.shape[1]:])), 0),
                     Instance("loglikelihood", {}, (context, " " + doc.text.split()[6 + k]), 0)]
    ref = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, softmax_dtype=torch.float32,
               logits_cache=False).loglikelihood(requests, disable_tqdm=True)
    ours = MadbenchLM(model, tokenizer, batch_size=4).loglikelihood(requests, disable_tqdm=True)
    assert [g for _, g in ours] == [g for _, g in ref]
    assert any(g for _, g in ours) and not all(g for _, g in ours)
    assert [ll for ll, _ in ours] == pytest.approx([ll for ll, _ in ref], abs=ABS, rel=REL)


def test_a_dropped_continuation_token_fails_the_comparison(setup, scored):
    """The comparison can fail: the same model scoring one continuation token fewer is far outside the tolerance."""
    from madbench.evaluation.lmeval_model import MadbenchLM

    class Truncated(MadbenchLM):
        def _loglikelihood_tokens(self, requests, **kwargs):
            return super()._loglikelihood_tokens([(s, c, t[:-1] or t) for s, c, t in requests], **kwargs)

    _, _, tokenizer, model, _ = setup
    broken = responses(evaluate(Truncated(model, tokenizer, batch_size=16), setup), "madbench_cloze")
    ref = responses(scored["hf_plain"], "madbench_cloze")
    assert max(abs(a[0] - b[0]) for a, b in zip(ref, broken)) > 100 * ABS


def test_a_shared_context_runs_once(setup):
    """A cloze document's choices share its context: it runs once into a KV cache, so far fewer tokens go
    through the model than one pass per request (HFLM's cost, padding aside). That the scores stay those
    of separate passes is test_every_request_scores_as_hflm's job."""
    from lm_eval.api.instance import Instance

    from madbench.evaluation.lmeval_model import MadbenchLM

    _, _, tokenizer, model, configs = setup
    data = Path(configs["madbench_cloze"]["dataset_kwargs"]["data_files"]["test"])
    docs = [json.loads(line) for line in data.read_text().splitlines()]
    requests = [Instance("loglikelihood", d, (d["context"], " " + c), k) for d in docs for k, c in enumerate(d["choices"])]
    lm = MadbenchLM(model, tokenizer, batch_size=16)
    one_pass_each = sum(len(c) + len(t) - 1 for c, t in (lm._encode_pair(*r.args) for r in requests))
    counted = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, args, out: counted.append(args[0].numel()))
    try:
        lm.loglikelihood(requests, disable_tqdm=True)
    finally:
        hook.remove()
    print(f"cloze: {sum(counted)} tokens through the model (padding included) vs {one_pass_each} one pass per request")
    assert sum(counted) < 0.85 * one_pass_each


def test_generate_until_stops_at_until_and_matches_greedy_generate(setup):
    from lm_eval.api.instance import Instance

    from madbench.evaluation.lmeval_model import MadbenchLM

    _, split, tokenizer, model, _ = setup
    base = model.get_base_model()
    lm = MadbenchLM(base, tokenizer, batch_size=4)
    contexts = [" ".join(d.text.split()[:n]) for d, n in zip(split.eval[:3], (5, 9, 14))]  # different lengths: left padding
    greedy = []
    for context in contexts:  # reference: greedy model.generate, one unpadded context at a time
        ids = torch.tensor([tokenizer.encode(context)])
        with torch.no_grad():
            out = base.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        greedy.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    assert all(len(g.split()) >= 3 for g in greedy)
    stops = [" " + g.split()[2] for g in greedy]  # a word in the middle of each continuation
    requests = [Instance("generate_until", {}, (c, {"until": [s], "max_gen_toks": 16}), i)
                for i, (c, s) in enumerate(zip(contexts, stops))]
    requests += [Instance("generate_until", {}, (c, {"until": ["@@never@@"], "max_gen_toks": 16}), 9) for c in contexts]
    texts = lm.generate_until(requests, disable_tqdm=True)
    for text, g, stop in zip(texts, greedy, stops):
        assert text == g[: g.index(stop)] and stop not in text
    assert texts[3:] == greedy


def test_results_record_the_lm_eval_model(setup, tmp_path):
    """Same files and keys from either lm-eval model; results.json says which one scored."""
    cfg, split, tokenizer, model, _ = setup
    files, keys = {}, {}
    for kind in ("madbench", "hf"):
        run_cfg = build_config(PRESETS.get("smoke")(), None, ["eval.tasks=[madbench_lambada]", f"eval.lm_eval_model={kind}"])
        out = tmp_path / kind / "lm_eval"
        scores = lmeval.run_tasks(model, tokenizer, run_cfg, split, out)
        saved = json.loads((out / "results.json").read_text())
        assert saved["madbench"]["lm_eval_model"] == kind and set(scores) == {"madbench_lambada/acc"}
        files[kind] = sorted(p.name for p in out.iterdir())
        keys[kind] = (sorted(saved), sorted(saved["config"]), sorted(saved["results"]["madbench_lambada"]))
        assert {"results.json", "samples_madbench_lambada.jsonl"} <= set(files[kind])
    assert files["madbench"] == files["hf"] and keys["madbench"] == keys["hf"]


@pytest.mark.slow
def test_unknown_lm_eval_model_is_one_line_with_a_hint():
    proc = madbench("run", "--preset", "smoke", "--dry-run", "eval.lm_eval_model=madbnech")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown eval.lm_eval_model 'madbnech'" in lines[0] and "did you mean 'madbench'" in lines[0]


@pytest.mark.slow
def test_bench_lm_eval_times_both_models_on_the_same_tasks(tmp_path):
    out = tmp_path / "bench.json"
    proc = madbench("bench", "--lm-eval", "--quick", "model.name=tiny", "model.dtype=float32", "eval.task_docs=4",
                    "--out", out, check=True)
    assert "lm-eval s/evaluation |" in proc.stdout
    r = json.loads(out.read_text())["lm_eval"]
    assert r["hf_seconds"] > 0 and r["madbench_seconds"] > 0 and r["speedup"] == pytest.approx(r["hf_seconds"] / r["madbench_seconds"])
    hf, ours = r["scores"]["hf"], r["scores"]["madbench"]
    assert set(hf) == set(ours) and all(ours[k] == pytest.approx(hf[k], rel=1e-5) for k in hf)


def test_rolling_loglikelihood_reuses_the_perplexity_metrics_forward(setup):
    """madbench_wikitext's documents are held-out text the perplexity metric has just scored under BOS: their
    rolling loglikelihoods come from that pass (no token goes through the model again) and equal a fresh
    scoring within the module's tolerance; the memo is the ScoreCache passed along, never an attribute of the model."""
    import copy

    from lm_eval.api.instance import Instance

    from madbench.evaluation.lmeval_model import MadbenchLM
    from madbench.metrics import METRICS, MetricContext
    from madbench.metrics.perplexity import remembered_sequence_logp
    from madbench.models.scores import ScoreCache

    cfg, _, tokenizer, shared_model, configs = setup
    model = copy.deepcopy(shared_model)
    data = Path(configs["madbench_wikitext"]["dataset_kwargs"]["data_files"]["test"])
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines()]
    requests = [Instance("loglikelihood_rolling", {}, (t,), 0) for t in texts]
    counted = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, args, out: counted.append(args[0].numel()))
    try:
        fresh = MadbenchLM(model, tokenizer, batch_size=16).loglikelihood_rolling(requests)
        assert sum(counted) > 0
        scores = ScoreCache()  # the model's explicit cache: the perplexity forward fills it, lm-eval reads it
        METRICS.spec("perplexity").fn(MetricContext(samples=[], human=texts + ["another held-out text"], model=model,
                                                    tokenizer=tokenizer, batch_size=16, scores=scores))
        counted.clear()
        reused = MadbenchLM(model, tokenizer, batch_size=16, scores=scores).loglikelihood_rolling(requests)
        assert sum(counted) == 0
    finally:
        hook.remove()
    print(f"{len(texts)} documents: max |rolling loglikelihood difference| {max(abs(a - b) for a, b in zip(fresh, reused)):.2e}")
    assert reused == pytest.approx(fresh, abs=ABS, rel=REL)
    ids = [tokenizer.bos_token_id] + tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    assert remembered_sequence_logp(scores, ids) is not None
    assert remembered_sequence_logp(ScoreCache(), ids) is None  # new weights get a new cache: nothing stale is read
    assert not [k for k in vars(model) if k.startswith("_madbench")]  # nothing is stored on the model itself
