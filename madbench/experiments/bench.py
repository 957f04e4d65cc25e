"""Speed of madbench's loop against plain transformers and the FLOP floor.

    madbench bench                         # default model (SmolLM2-135M), a few minutes on 2 cores
    madbench bench --quick --out bench.json
    madbench bench --scaling               # time per generation as samples / tokens double
    madbench bench model.name=tiny --samples 8 --new-tokens 8 --train-docs 8 --eval-docs 8
    madbench bench --lm-eval               # only: seconds per lm-eval evaluation, HFLM vs madbench's model
    madbench bench --quick --no-baseline --contention 2   # the step alone and beside 2 busy processes (contention.py)

It measures, after one untimed warm-up step (both paths: a run's generations all
run warm), for madbench's own path (in this process) (madbench.generation.sampling.generate,
madbench.training.trainer.train_lora, madbench.metrics.perplexity.token_nll) and for a
plain-transformers baseline written the obvious way (fp32 model, LoRA via
get_peft_model, a plain AdamW loop, ``model(..., labels=...)`` for perplexity,
``model.generate`` batch by batch; in a fresh spawned process with glibc's
default allocator): sampling tokens/s, LoRA training tokens/s,
evaluation time and a whole generation step (copy + train + evaluate + sample).

FLOP counts assumed (N = base parameters, tied embeddings counted once; the
LM head costs 2*d*V per token like any matmul and the embedding lookup ~0):
forward = 2*N per token (sampling, evaluation); LoRA training = 4*N per token
(forward 2N + gradient w.r.t. activations 2N; frozen weights get no weight
gradient; LoRA's own FLOPs and attention's 4*L*T*d are ignored, < 5% here).
The floor is tokens/s = peak / FLOPs-per-token, peak = the best of a measured
2048x2048 torch.matmul in fp32 and bf16 (bf16 only where the CPU supports it).
Timings on a shared machine undercount: check ``uptime`` first.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import time
from pathlib import Path

import torch

HEADERS = ("task", "madbench", "plain", "floor", "madbench/floor", "plain/floor", "speedup")


def add_arguments(p):
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.name=tiny")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute on the default model)")
    p.add_argument("--samples", type=int, help="documents sampled per generation (default: sampling.num_samples)")
    p.add_argument("--new-tokens", type=int, help="tokens per sample (default: sampling.max_new_tokens)")
    p.add_argument("--train-docs", type=int, help="documents trained on (default: data.train_docs)")
    p.add_argument("--eval-docs", type=int, help="held-out documents scored (default: data.eval_docs)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain-transformers baseline")
    p.add_argument("--scaling", action="store_true", help="also time a generation as samples and tokens double")
    p.add_argument("--lm-eval", action="store_true",
                   help="only time one generation's lm-eval phase (eval.tasks), HFLM vs madbench's lm-eval model "
                        "(best of 2 after a warm-up; --quick: 1)")
    p.add_argument("--contention", type=int, default=0, metavar="N",
                   help="also time madbench's generation step beside N busy processes (started and killed by bench) and "
                        "report loaded/alone against the fair share, max(1, (N + threads) / cores)")


def matmul_peak(dtype, n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of an n x n torch.matmul (best of reps)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2 ** 20


def _new_tokens(tokenizer, prompts, outputs) -> int:
    count = lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    return sum(max(0, count(o) - count(p)) for p, o in zip(prompts, outputs))


def _distinct2(texts) -> float:
    grams = [tuple(w[i : i + 2]) for w in (t.split() for t in texts) for i in range(len(w) - 1)]
    return len(set(grams)) / max(1, len(grams))


def madbench_step(base, tokenizer, cfg, train_texts, eval_texts, prompts, seed: int = 1) -> dict:
    """One generation through madbench's own functions; returns timings and quality."""
    from madbench.metrics.perplexity import token_nll
    from madbench.generation.sampling import generate
    from madbench.training.trainer import make_peft_model, train_lora

    t0 = time.perf_counter()
    model = make_peft_model(base, cfg, seed, None)
    trained = train_lora(model, tokenizer, train_texts, cfg, seed, desc="bench: madbench training")
    model, stats = trained.model, trained.stats.as_dict()
    t1 = time.perf_counter()
    total, count = token_nll(model, tokenizer, eval_texts, cfg.eval.batch_size)
    t2 = time.perf_counter()
    completions = generate(model, tokenizer, prompts, cfg, seed, desc="bench: madbench sampling")
    outputs = [f"{c.prompt} {c.continuation}".strip() for c in completions]  # as the plain baseline decodes them
    t3 = time.perf_counter()
    return {"train_tokens": stats["train_tokens"], "train_seconds": stats["train_seconds"], "setup_train_seconds": t1 - t0,
            "eval_tokens": count, "eval_seconds": t2 - t1, "perplexity": math.exp(total / max(1, count)),
            "sample_tokens": sum(c.new_tokens for c in completions), "sample_seconds": t3 - t2,
            "distinct_2": _distinct2(outputs), "step_seconds": t3 - t0, "rss_mb": rss_mb()}


def plain_baseline(path, cfg, data) -> dict:
    """Load the model in fp32 the plain way, run :func:`plain_step` once to warm up, then time it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    base32 = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    plain_step(base32, tokenizer, cfg, *data)
    return plain_step(base32, tokenizer, cfg, *data)


def plain_step(base32, tokenizer, cfg, train_texts, eval_texts, prompts, seed: int = 1) -> dict:
    """The same generation written the obvious way with transformers + peft, in fp32.

    Training uses madbench's recipe (learning-rate schedule, weight decay, shuffled block
    order) so that the quality columns compare the fast path's numerics, not two recipes.
    """
    import random

    from peft import LoraConfig, get_peft_model

    from madbench.training.trainer import pack, target_tokens, warmup_cosine

    t, s = cfg.train, cfg.sampling
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = get_peft_model(copy.deepcopy(base32), LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM"))
    blocks, labels = pack(tokenizer, train_texts, t.seq_len)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.learning_rate, weight_decay=t.weight_decay)
    schedule = warmup_cosine(opt, t.warmup_steps, math.ceil(len(blocks) / t.batch_size) * t.epochs)
    rng = random.Random(f"order:{seed}")
    model.train()
    tt, tokens = time.perf_counter(), 0
    for _ in range(t.epochs):
        order = list(range(len(blocks)))
        rng.shuffle(order)
        for i in range(0, len(blocks), t.batch_size):
            batch, batch_labels = blocks[order[i : i + t.batch_size]], labels[order[i : i + t.batch_size]]
            model(input_ids=batch, labels=batch_labels).loss.backward()
            opt.step()
            schedule.step()
            opt.zero_grad()
            tokens += target_tokens(batch_labels)
    train_seconds = time.perf_counter() - tt
    model.eval()
    t1 = time.perf_counter()
    nll, count = 0.0, 0
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    with torch.no_grad():
        for i in range(0, len(eval_texts), cfg.eval.batch_size):
            enc = [bos + tokenizer(x, add_special_tokens=False)["input_ids"] for x in eval_texts[i : i + cfg.eval.batch_size]]
            width = max(map(len, enc))
            ids = torch.tensor([e + [tokenizer.pad_token_id] * (width - len(e)) for e in enc])
            mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in enc])
            labels = ids.masked_fill(mask == 0, -100)
            n = int((labels[:, 1:] != -100).sum())
            nll += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
            count += n
    t2 = time.perf_counter()
    tokenizer.padding_side = "left"
    outputs = []
    torch.manual_seed(seed)
    with torch.no_grad():
        for i in range(0, len(prompts), s.batch_size):
            enc = tokenizer([(tokenizer.bos_token or "") + p for p in prompts[i : i + s.batch_size]],
                            return_tensors="pt", padding=True, add_special_tokens=False)
            # the run's sampling settings spelled out: generate's own default top_k=50 would narrow the draws
            out = model.generate(**enc, max_new_tokens=s.max_new_tokens, do_sample=True, temperature=s.temperature,
                                 top_p=s.top_p, top_k=s.top_k, repetition_penalty=s.repetition_penalty,
                                 pad_token_id=tokenizer.pad_token_id)
            outputs += tokenizer.batch_decode(out, skip_special_tokens=True)
    t3 = time.perf_counter()
    return {"train_tokens": tokens, "train_seconds": train_seconds, "setup_train_seconds": t1 - t0,
            "eval_tokens": count, "eval_seconds": t2 - t1, "perplexity": math.exp(nll / max(1, count)),
            "sample_tokens": _new_tokens(tokenizer, prompts, outputs), "sample_seconds": t3 - t2,
            "distinct_2": _distinct2(outputs), "step_seconds": t3 - t0, "rss_mb": rss_mb()}


def rows(m: dict, p: dict | None, floor: dict) -> list:
    """Table rows: (task, madbench, plain, floor, fractions, speedup)."""
    def rate(d, what):
        return d[f"{what}_tokens"] / d[f"{what}_seconds"] if d else None

    out = []
    for task, what, key in (("sampling tok/s", "sample", "forward"), ("LoRA training tok/s", "train", "train"),
                            ("evaluation tok/s", "eval", "forward")):
        mv, pv, fv = rate(m, what), rate(p, what), floor[f"{key}_tokens_per_s"]
        out.append({"task": task, "madbench": mv, "plain": pv, "floor": fv, "madbench_frac": mv / fv,
                    "plain_frac": pv / fv if pv else None, "speedup": mv / pv if pv else None})
    floor_s = m["train_tokens"] / floor["train_tokens_per_s"] + (m["eval_tokens"] + m["sample_tokens"]) / floor["forward_tokens_per_s"]
    out.append({"task": "generation step s", "madbench": m["step_seconds"], "plain": p["step_seconds"] if p else None,
                "floor": floor_s, "madbench_frac": floor_s / m["step_seconds"],
                "plain_frac": floor_s / p["step_seconds"] if p else None,
                "speedup": p["step_seconds"] / m["step_seconds"] if p else None})
    return out


def fmt(v, pct=False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def print_table(table: list) -> None:
    lines = [" | ".join(HEADERS)]
    for r in table:
        lines.append(" | ".join([r["task"], fmt(r["madbench"]), fmt(r["plain"]), fmt(r["floor"]), fmt(r["madbench_frac"], True),
                                 fmt(r["plain_frac"], True), f"{r['speedup']:.2f}x" if r["speedup"] else "-"]))
    print("\n".join(lines))


def main(args) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from madbench.config.run_config import build_config
    from madbench.data.corpus import load_split
    from madbench.models.base_model import bf16_supported, load_base, resolve_model
    from madbench.generation.sampling import make_prompts

    if not 0 <= args.contention <= 256:
        from madbench.errors import MadbenchError

        raise MadbenchError(f"--contention {args.contention}: give a number of busy processes from 0 to 256")
    cfg = build_config(overrides=list(args.overrides))
    q = args.quick
    n_samples = args.samples or (16 if q else cfg.sampling.num_samples)
    new_tokens = args.new_tokens or (32 if q else cfg.sampling.max_new_tokens)
    n_train = args.train_docs or (16 if q else cfg.data.train_docs)
    n_eval = args.eval_docs or (32 if q else cfg.data.eval_docs)
    cfg = build_config(overrides=list(args.overrides) + [
        f"sampling.num_samples={n_samples}", f"sampling.max_new_tokens={new_tokens}",
        f"sampling.batch_size={min(cfg.sampling.batch_size, n_samples)}"])
    split = load_split(cfg)
    path = resolve_model(cfg, split)
    tokenizer, base = load_base(path, cfg)
    n_params = sum(p.numel() for p in base.parameters())
    peaks = {"float32": matmul_peak(torch.float32)}
    if bf16_supported():
        peaks["bfloat16"] = matmul_peak(torch.bfloat16)
    peak = max(peaks.values())
    floor = {"forward_flops_per_token": 2 * n_params, "train_flops_per_token": 4 * n_params,
             "forward_tokens_per_s": peak * 1e9 / (2 * n_params), "train_tokens_per_s": peak * 1e9 / (4 * n_params)}
    train_texts = [d.text for d in split.pool[:n_train]]
    eval_texts = [d.text for d in split.eval[:n_eval]]
    prompts = make_prompts(cfg, split.pool, n_samples, 0, 1)
    load = os.getloadavg()[0]
    print(f"madbench bench: {cfg.model.name} ({n_params / 1e6:.1f} M params, {base.dtype}), {torch.get_num_threads()} threads, "
          f"load {load:.2f}; matmul peak " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()), flush=True)
    if args.lm_eval:
        return _lm_eval_only(base, tokenizer, cfg, split, args.out, reps=1 if q else 2)
    data = (train_texts, eval_texts, prompts)
    madbench_step(base, tokenizer, cfg, *data)  # warm-up: thread pools, oneDNN primitives, the heap; a run is warm too
    mine = madbench_step(base, tokenizer, cfg, train_texts, eval_texts, prompts)
    from madbench.experiments.contention import measure

    contention = measure(args.contention, lambda: madbench_step(base, tokenizer, cfg, *data), mine)
    plain = None
    if not args.no_baseline:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # its own process: plain transformers gets glibc's default allocator, not madbench's (madbench/models/runtime.py)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            plain = pool.submit(plain_baseline, path, cfg, data).result()
    table = rows(mine, plain, floor)
    print_table(table)
    print(f"quality: perplexity madbench {mine['perplexity']:.3f} / plain {plain['perplexity'] if plain else float('nan'):.3f}; "
          f"distinct-2 madbench {mine['distinct_2']:.3f} / plain {plain['distinct_2'] if plain else float('nan'):.3f}")
    result = {"model": cfg.model.name, "params": n_params, "dtype": str(base.dtype).replace("torch.", ""),
              "threads": torch.get_num_threads(), "load_avg_1min": load, "matmul_gflops": peaks, "peak_gflops": peak,
              "flops": floor, "sizes": {"samples": n_samples, "new_tokens": new_tokens, "train_docs": n_train,
                                        "eval_docs": n_eval, "epochs": cfg.train.epochs},
              "madbench": mine, "plain": plain, "table": table,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    result.update(_machine(), contention=contention)
    if args.scaling:
        result["scaling"] = scaling(base, tokenizer, cfg, split, n_samples, new_tokens)
    if args.out:
        from madbench.results import fileio

        fileio.write_json(Path(args.out), result)
        print(f"wrote {args.out}")
    return 0


def _machine() -> dict:
    """The processor, the cores this process may use and the load, as the bench JSON records them."""
    from madbench.models.threads import thread_info
    from madbench.processor import processor

    return {"processor": processor(), **thread_info(), "load_avg": list(os.getloadavg())}


def scaling(base, tokenizer, cfg, split, n_samples: int, new_tokens: int) -> list:
    """Time one madbench generation (train on the samples, evaluate, sample) as samples or tokens double."""
    from madbench.config.run_config import build_config
    from madbench.generation.sampling import make_prompts

    grid = [(n_samples, new_tokens), (2 * n_samples, new_tokens), (4 * n_samples, new_tokens),
            (n_samples, 2 * new_tokens), (n_samples, 4 * new_tokens)]
    out = []
    print("samples | new tokens | step s | s per 1k sampled tokens")
    for n, tks in grid:
        c = build_config(cfg.to_dict(), overrides=[f"sampling.num_samples={n}", f"sampling.max_new_tokens={tks}"])
        prompts = make_prompts(c, split.pool, n, 0, 1)
        texts = [d.text for d in split.pool[:n]]
        r = madbench_step(base, tokenizer, c, texts, [d.text for d in split.eval[:16]], prompts)
        row = {"samples": n, "new_tokens": tks, "step_seconds": r["step_seconds"], "sample_seconds": r["sample_seconds"],
               "train_seconds": r["train_seconds"], "sample_tokens": r["sample_tokens"]}
        out.append(row)
        print(f"{n} | {tks} | {r['step_seconds']:.1f} | {1000 * r['step_seconds'] / max(1, n * tks):.2f}", flush=True)
    return out


def lm_eval_speed(base, tokenizer, cfg, split, reps: int = 2) -> dict:
    """Seconds of one generation's lm-eval phase (:func:`madbench.evaluation.lmeval.run_tasks`) with each lm-eval model,
    alternated in this process (same load) after one warm-up each; best of ``reps``; and each one's scores."""
    import tempfile

    from madbench.config.run_config import build_config
    from madbench.evaluation.lmeval import run_tasks
    from madbench.training.trainer import make_peft_model

    model = make_peft_model(base, cfg, 1, None)
    seconds, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps + 1):
            for kind in ("hf", "madbench"):
                c = build_config(cfg.to_dict(), overrides=[f"eval.lm_eval_model={kind}"])
                t = time.perf_counter()
                scores[kind] = run_tasks(model, tokenizer, c, split, Path(tmp) / "gen" / kind)
                if rep:
                    seconds[kind] = min(seconds.get(kind, math.inf), time.perf_counter() - t)
    return {"tasks": list(cfg.eval.tasks), "task_docs": cfg.eval.task_docs, "batch_size": cfg.eval.batch_size,
            "hf_seconds": seconds["hf"], "madbench_seconds": seconds["madbench"],
            "speedup": seconds["hf"] / seconds["madbench"], "scores": scores}


def _lm_eval_only(base, tokenizer, cfg, split, out, reps: int) -> int:
    r = lm_eval_speed(base, tokenizer, cfg, split, reps)
    print(f"lm-eval s/evaluation ({', '.join(r['tasks'])}; {r['task_docs']} docs each) | madbench | hf | speedup")
    print(f"lm-eval s/evaluation | {r['madbench_seconds']:.2f} | {r['hf_seconds']:.2f} | {r['speedup']:.2f}x")
    if out:
        from madbench.results import fileio

        fileio.write_json(Path(out), {"model": cfg.model.name, "load_avg_1min": os.getloadavg()[0], "lm_eval": r})
        print(f"wrote {out}")
    return 0
