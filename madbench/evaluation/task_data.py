"""The local lm-eval tasks' data, built deterministically from a run's held-out human documents.

    from madbench.evaluation.task_data import BUILDERS, build_task_data
    build_task_data(["madbench_cloze"], split, cfg, Path("RUN/lm_eval_data"))   # -> madbench_cloze.jsonl + .yaml

Each task in ``madbench/evaluation/tasks/<name>.yaml`` (package data) has a builder registered here under its
name: ``fn(texts, rng, n) -> rows``. :func:`build_task_data` writes ``RUN/lm_eval_data/<name>.jsonl`` from
``split.eval`` (never trained on) and a resolved copy of the task YAML whose data path is absolute, so a saved
adapter scores the same from disk with ``lm_eval --include_path RUN/lm_eval_data``
(:mod:`madbench.evaluation.lmeval` runs them).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Dict, List

import yaml

from madbench.errors import MadbenchError
from madbench.registry import Registry
from madbench.results import fileio

TASKS_DIR = Path(__file__).resolve().parent / "tasks"  # package data: a wheel install has them too
BUILDERS = Registry("local lm-eval task")  # task name -> fn(docs, rng, n) -> list of JSONL rows
NUM_CHOICES = 4  # madbench_cloze: the true continuation + 3 distractors
_BUILT: dict = {}  # (data folder, task, docs) -> resolved task config, built once per process


def local_tasks() -> Dict[str, Path]:
    """The task YAMLs shipped in madbench/tasks/ (name -> file)."""
    return {p.stem: p for p in sorted(TASKS_DIR.glob("*.yaml"))}


def _words(text: str) -> List[str]:
    return text.split()


@BUILDERS.register("madbench_cloze")
def cloze_rows(texts: List[str], rng: random.Random, n: int) -> List[dict]:
    """Context = first half of a passage; choices = its real second half + halves of other held-out passages."""
    halves = []
    for text in texts:
        words = _words(text)
        cut = len(words) // 2
        halves.append((" ".join(words[:cut]), words[cut:]))
    rows = []
    for i, (context, ending) in enumerate(halves[:n]):
        others = [j for j in range(len(halves)) if j != i]
        choices = [" ".join(ending)]
        for j in rng.sample(others, min(len(others), 8 * NUM_CHOICES)):
            candidate = " ".join(halves[j][1][: len(ending)])  # same length in words as the true ending
            if candidate and candidate not in choices:
                choices.append(candidate)
            if len(choices) == NUM_CHOICES:
                break
        true = choices[0]
        rng.shuffle(choices)
        rows.append({"id": i, "context": context, "choices": choices, "label": choices.index(true)})
    return rows


_LAST_WORD = re.compile(r"^[^\W\d_][\w'-]*?(?=[^\w]*$)")


@BUILDERS.register("madbench_lambada")
def lambada_rows(texts: List[str], rng: random.Random, n: int) -> List[dict]:
    """Context = a passage up to the last word of its last full sentence; target = that word (no punctuation).

    Passages are fixed-size word windows, so their very last word is mostly 'and' or 'of';
    a sentence-final word (like LAMBADA's) needs the context. Without a sentence end, the last word.
    """
    rows = []
    for text in texts:
        words = _words(text)
        spots = [k for k in range(len(words) - 1, 3, -1) if _LAST_WORD.match(words[k])]  # >= 4 words of context
        ends = [k for k in spots if words[k][-1] in ".!?;:" and k >= len(words) // 2]
        if spots:
            k = (ends or spots)[0]
            target = _LAST_WORD.match(words[k]).group(0)
            rows.append({"id": len(rows), "context": " ".join(words[:k]), "target": " " + target})
        if len(rows) == n:
            break
    return rows


@BUILDERS.register("madbench_wikitext")
def wikitext_rows(texts: List[str], rng: random.Random, n: int) -> List[dict]:
    """Whole held-out passages, scored by rolling loglikelihood."""
    return [{"id": i, "text": t} for i, t in enumerate(texts[:n])]


def build_task_data(names, split, cfg, data_dir: Path) -> Dict[str, dict]:
    """Write RUN/lm_eval_data/<task>.jsonl and a resolved <task>.yaml per local task; return the task configs."""
    data_dir = Path(data_dir).resolve()
    local = local_tasks()
    texts = [d.text for d in split.eval]  # held-out human text only: never split.pool or split.fresh
    n = cfg.eval.task_docs or len(texts)
    out = {}
    for name in names:
        key = (str(data_dir), name, n, cfg.data.split_seed, len(texts))
        if key not in _BUILT:
            rng = random.Random(f"{cfg.data.split_seed}:{name}")
            rows = BUILDERS.get(name)(texts, rng, n)
            if not rows:
                raise MadbenchError(f"task {name}: no usable held-out documents; raise data.eval_docs or data.doc_words")
            path = data_dir / f"{name}.jsonl"
            fileio.write_jsonl(path, rows)
            task_cfg = yaml.safe_load(local[name].read_text(encoding="utf-8"))
            task_cfg["dataset_kwargs"] = {**task_cfg.get("dataset_kwargs", {}), "data_files": {"test": str(path)}}
            fileio.atomic_write_text(data_dir / f"{name}.yaml", f"# {local[name].name} resolved by madbench for this run\n"
                                 + yaml.safe_dump(task_cfg, sort_keys=False))
            _BUILT[key] = task_cfg
        out[name] = _BUILT[key]
    return out
