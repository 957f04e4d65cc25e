"""Task scores through EleutherAI lm-eval, for every generation's in-memory model.

    madbench run --preset smoke                                   # default suite: madbench/tasks/*.yaml
    madbench run eval.tasks=[madbench_cloze] eval.task_docs=32
    madbench run eval.tasks=[madbench_cloze,hellaswag]            # built-in lm-eval tasks need the hub (online)

The local tasks (``madbench/tasks/<name>.yaml``, package data) read data built deterministically
(:mod:`madbench.evaluation.task_data`) from the run's held-out human documents (``split.eval``, never trained on):
``RUN/lm_eval_data/<name>.jsonl``, with a resolved copy ``RUN/lm_eval_data/<name>.yaml``
whose data path is absolute, so a saved adapter scores the same from disk::

    lm_eval --model hf --model_args pretrained=BASE,peft=RUN/chains/<chain>/gen_002/adapter \\
        --include_path RUN/lm_eval_data --tasks madbench_cloze,madbench_lambada,madbench_wikitext

Scores are lm-eval's own (``simple_evaluate``); its results and per-document samples are
kept in ``<generation>/lm_eval/``. ``eval.lm_eval_model`` picks the lm-eval model that
answers the requests: ``madbench`` (the default: :class:`madbench.evaluation.lmeval_model.MadbenchLM`,
madbench's forward with the LoRA merged, shared prefixes scored once, the LM head and
log-softmax at continuation positions only) or ``hf`` (lm-eval's ``HFLM`` wrapping the
peft model, LoRA merged too); both give the same scores within float noise::

    madbench run --preset smoke eval.lm_eval_model=hf

``results.json``'s ``madbench.lm_eval_model`` records which one scored.

Your own tasks, the way ``lm_eval --include_path DIR`` takes them: folders of task YAMLs in
``eval.include_path``, their task names in ``eval.tasks`` (a relative ``data_files`` path in a
YAML resolves against the working directory, as in lm-eval: prefer absolute paths)::

    madbench run --preset smoke 'eval.include_path=[my_tasks]' 'eval.tasks=[madbench_cloze,my_task]'

The run records the folders and a sha256 of every YAML in them (``environment.lm_eval_include``
in results.json; ``madbench.include`` in each generation's lm_eval/results.json).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Dict, List

from madbench.results import fileio
from madbench.results.run_store import LM_EVAL_RESULTS
from madbench.errors import MadbenchError
from madbench.registry import did_you_mean
from madbench.evaluation.task_data import (  # noqa: F401  (re-exported: the task data's builders live there)
    BUILDERS, NUM_CHOICES, TASKS_DIR, build_task_data, local_tasks)

_MANAGERS: dict = {}  # include_defaults -> TaskManager; indexing the ~14,700 built-in tasks takes ~7 s


def _rng_state():
    import numpy as np
    import torch

    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_state(state) -> None:
    import numpy as np
    import torch

    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def task_manager(builtin: bool, include=()):
    """One lm-eval TaskManager per process and include path; the built-in index is only built when a built-in task is asked for."""
    key = (builtin, tuple(str(Path(p).expanduser().resolve()) for p in include))
    if key not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        _MANAGERS[key] = TaskManager(include_path=[str(TASKS_DIR), *key[1]], include_defaults=builtin)
    return _MANAGERS[key]


def check_include(include) -> None:
    """Every eval.include_path entry is an existing folder holding task YAMLs: one line otherwise."""
    for folder in include:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise MadbenchError(f"eval.include_path: '{folder}' is not a folder; give folders of lm-eval task YAMLs")
        if not any(path.rglob("*.yaml")):
            raise MadbenchError(f"eval.include_path: '{folder}' holds no *.yaml task files")


def include_tasks(include) -> List[str]:
    """Task names defined in the eval.include_path folders (no built-in index: fast)."""
    if not include:
        return []
    check_include(include)
    local = set(local_tasks())
    return [n for n in task_manager(False, include).all_tasks if n not in local]


def include_record(include) -> dict:
    """{folder: {yaml path relative to it: sha256}} plus one ``hash`` over all of them, for the run's record."""
    files = {}
    for folder in include:
        root = Path(folder).expanduser().resolve()
        files[str(root)] = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in sorted(root.rglob("*.yaml"))}
    return {"folders": files, "hash": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]}


def check_tasks(names, include=()) -> None:
    """Raise one line for a name that is neither in madbench/tasks/, nor in eval.include_path, nor a built-in lm-eval task."""
    local = local_tasks()
    unknown = [n for n in names if n not in local]
    mine = include_tasks(include) if unknown and include else []
    unknown = [n for n in unknown if n not in set(mine)]
    if not unknown:
        return
    local = {**local, **dict.fromkeys(mine)}  # the include folders' tasks are suggested and listed as local
    known = task_manager(True).all_tasks
    known_set = set(known)
    for name in unknown:
        if name not in known_set:
            where = f"local tasks: {', '.join(local)}" if local else f"the tasks folder {TASKS_DIR} is missing (reinstall madbench)"
            raise MadbenchError(
                f"unknown lm-eval task '{name}' in eval.tasks;{did_you_mean(name, [*local, *known])} "
                f"{where}; built-in names: lm_eval ls tasks"
            )


def run_folder(out_dir: Path) -> Path:
    """The run folder holding out_dir (the nearest parent with config.json), else out_dir's parent."""
    out_dir = Path(out_dir).resolve()
    for parent in out_dir.parents:
        if (parent / "config.json").is_file():
            return parent
    return out_dir.parent


# ---------------------------------------------------------------------------- scoring
def flatten(results: dict) -> Dict[str, float]:
    """lm-eval's {task: {'acc,none': x, 'acc_stderr,none': s}} -> {'task/acc': x}; stderr stays in the saved JSON."""
    out = {}
    for task, metrics in results.items():
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if metric in ("alias", "sample_len") or metric.endswith("_stderr") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[f"{task}/{metric}" + ("" if filt in ("", "none") else f"_{filt}")] = float(value)
    return out


def directions(results: dict) -> Dict[str, bool]:
    """lm-eval's own ``higher_is_better`` of each task score, under the keys of :func:`flatten` (from the whole
    saved output: ``results`` and ``higher_is_better``); a metric lm-eval gives no direction for is left out."""
    declared = results.get("higher_is_better") or {}
    out = {}
    for task, metrics in (results.get("results") or {}).items():
        for key in metrics:
            metric, _, filt = key.partition(",")
            value = (declared.get(task) or {}).get(metric)
            if isinstance(value, bool):
                out[f"{task}/{metric}" + ("" if filt in ("", "none") else f"_{filt}")] = value
    return out


def stderr_intervals(results: dict, z: float = 1.96) -> Dict[str, list]:
    """95% intervals value +/- z x lm-eval's own '<metric>_stderr,<filter>', under the keys of :func:`flatten`."""
    values, out = flatten(results), {}
    for task, metrics in results.items():
        for key, err in metrics.items():
            metric, _, filt = key.partition(",")
            if not metric.endswith("_stderr") or isinstance(err, bool) or not isinstance(err, (int, float)):
                continue
            name = f"{task}/{metric[: -len('_stderr')]}" + ("" if filt in ("", "none") else f"_{filt}")
            if name in values and math.isfinite(err):
                out[name] = [values[name] - z * float(err), values[name] + z * float(err)]
    return out


def task_intervals(out_dir: Path) -> Dict[str, list]:
    """Intervals of the task scores saved by :func:`run_tasks` in out_dir ({} when there are none): lm-eval's
    stderr where it gives one, else (its perplexities) a bootstrap over the documents of the saved samples."""
    path = Path(out_dir) / LM_EVAL_RESULTS
    if not path.is_file():
        return {}
    results = fileio.read_json(path).get("results") or {}
    out, values = stderr_intervals(results), flatten(results)
    for task in results:
        samples = Path(out_dir) / f"samples_{task}.jsonl"
        wanted = [k for k in values if k.startswith(f"{task}/") and k not in out]
        if wanted and samples.is_file():
            out.update(_perplexity_intervals(task, fileio.read_jsonl(samples), {k: values[k] for k in wanted}))
    return out


def _perplexity_intervals(task: str, rows: List[dict], values: Dict[str, float]) -> Dict[str, list]:
    """Bootstrap over documents of lm-eval's rolling-loglikelihood metrics (rows hold [loglikelihood, units])."""
    import numpy as np

    from madbench.metrics.intervals import bootstrap_interval

    agg = {"word_perplexity": lambda ll, n: math.exp(-ll / n), "byte_perplexity": lambda ll, n: math.exp(-ll / n),
           "bits_per_byte": lambda ll, n: -ll / (n * math.log(2))}
    out = {}
    for metric, fn in agg.items():
        key = f"{task}/{metric}"
        pairs = [r.get(metric) for r in rows if r.get("filter", "none") == "none"]
        if key not in values or not pairs or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            continue
        ll, units = np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)
        iv = bootstrap_interval(lambda idx: fn(ll[idx].sum(), units[idx].sum()) if units[idx].sum() else None,
                                len(pairs), values[key])
        if iv:
            out[key] = iv
    return out


def _env_info_once() -> None:
    """lm-eval's ``add_env_info`` runs torch's ``collect_env`` (subprocesses, about 0.4 s on 2 cores) inside every
    ``simple_evaluate``, i.e. every generation; the environment does not change within a process, so it is
    gathered once and the same keys are written into every generation's results.json."""
    import copy

    import lm_eval.evaluator as evaluator

    if getattr(evaluator.add_env_info, "madbench_once", False):
        return
    original, gathered = evaluator.add_env_info, {}

    def add_env_info(storage: dict) -> None:
        if not gathered:
            original(gathered)
        storage.update(copy.deepcopy(gathered))

    add_env_info.madbench_once = True
    evaluator.add_env_info = add_env_info


def _evaluate(simple_evaluate, lm, specs, builtin, cfg, include=(), limited=None):
    _env_info_once()
    limited = builtin if limited is None else limited
    return simple_evaluate(
        model=lm, tasks=specs, task_manager=task_manager(bool(builtin), include), log_samples=True,
        limit=(cfg.eval.task_docs or None) if limited else None,  # local tasks are built with task_docs already
        bootstrap_iters=1000,  # stderr of perplexity-type metrics by bootstrap; lm-eval's 100,000 is slow on CPU
    )


def make_lm(kind: str, model, tokenizer, batch_size: int, scores=None):
    """The lm-eval model named by eval.lm_eval_model around an in-memory model (madbench/evaluation/lm_models.py);
    'madbench' reads what the model's ScoreCache ``scores`` already holds."""
    from madbench.evaluation.lm_models import make_lm as build

    return build(kind, model, tokenizer, batch_size, scores=scores)


def run_tasks(model, tokenizer, cfg, split, out_dir, scores=None) -> Dict[str, float]:
    """Score the in-memory model on cfg.eval.tasks; keep lm-eval's output in out_dir; return flat metrics.
    ``scores``: the model's ScoreCache (madbench/models/scores.py), whose perplexity forward lm-eval reuses."""
    from lm_eval import simple_evaluate
    from lm_eval.utils import handle_non_serializable

    start, cpu = time.perf_counter(), time.process_time()
    names = list(cfg.eval.tasks)
    include = tuple(cfg.eval.include_path)
    check_tasks(names, include)
    local = local_tasks()
    out_dir = Path(out_dir)
    configs = build_task_data([n for n in names if n in local], split, cfg, run_folder(out_dir) / "lm_eval_data")
    mine = set(include_tasks(include))
    builtin = [n for n in names if n not in local and n not in mine]
    specs = [configs.get(n, n) for n in names]
    was_training = model.training
    model.eval()
    rng_state = _rng_state()  # simple_evaluate reseeds the global RNGs; the loop's own seeding must not notice
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # lm-eval logs every request batch at INFO; keep the run's output readable
        lg.setLevel(logging.ERROR)
    try:
        from madbench.models.inference import merged_lora
        from madbench.quiet import captured_stderr

        # LoRA folded into the weights for scoring: the cost of the base model, same numbers.
        # lm-eval's bars (always on) and git probe go to lm_eval/stderr.txt when the output is a log file.
        with merged_lora(model), captured_stderr(out_dir / "stderr.txt"):
            lm = make_lm(cfg.eval.lm_eval_model, model, tokenizer, cfg.eval.batch_size, scores)
            results = _evaluate(simple_evaluate, lm, specs, builtin, cfg, include, limited=[n for n in names if n not in local])
    except Exception as exc:
        if not builtin:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MadbenchError(f"lm-eval task(s) {', '.join(builtin)} failed: {first[:200]}; built-in tasks fetch "
                            f"their data from the Hugging Face hub and need a connection") from exc
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        _set_rng_state(rng_state)
        if was_training:
            model.train()
    if results is None:  # lm-eval returns results on rank 0 only under `accelerate launch`
        return {}
    samples = results.pop("samples", {})
    results["madbench"] = {"tasks": names, "task_docs": cfg.eval.task_docs, "lm_eval_model": cfg.eval.lm_eval_model,
                           **({"include": include_record(include)} if include else {}),
                           "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
    fileio.atomic_write_text(out_dir / LM_EVAL_RESULTS, json.dumps(results, indent=2, default=handle_non_serializable))
    for task, rows in samples.items():
        fileio.atomic_write_text(out_dir / f"samples_{task}.jsonl",
                             "".join(json.dumps(r, default=handle_non_serializable) + "\n" for r in rows))
    return flatten(results["results"])
