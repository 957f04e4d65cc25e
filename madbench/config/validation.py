"""Value and name checks of a built RunConfig: one clear line naming the key, before anything runs.

    madbench run --dry-run sampling.top_p=1.5        # madbench: error: sampling.top_p must be in (0, 1]

Called by :func:`madbench.config.run_config.build_config` and again for a resumed or swept config;
registry names (regimes, mitigations and their parameters, metrics, lm-eval tasks) are looked up
with a did-you-mean; the loop's own options are checked by their owners (schedules, ecosystem, weights).
"""

from __future__ import annotations

from madbench.config.run_config import RunConfig
from madbench.errors import MadbenchError
from madbench.registry import did_you_mean

PACKINGS = ("packed", "per_document")  # train.packing (madbench/training/packing.py)
CHECKPOINTS = ("last", "best_val")  # train.checkpoint (madbench/training/trainer.py)
SHARE_UNITS = ("documents", "tokens")  # loop.share_unit (madbench/loop/regimes.py)


def row_checks(cfg) -> list:
    """(ok, message) for one-document rows that could hold no loss target: a prompt as long as the row.

    Every word is at least one token, so ``data.prompt_words + 2`` (BOS, EOS) tokens is the least a masked prompt takes."""
    rows, prompt, seq = cfg.train.packing == "per_document", cfg.data.prompt_words, cfg.train.seq_len
    fix = f"raise train.seq_len above {prompt + 2}, lower data.prompt_words, or use train.packing=packed"
    return [
        (not (rows and cfg.sampling.keep_prompt and prompt + 2 >= seq),
         f"train.packing=per_document cuts a row at train.seq_len={seq} tokens, but sampling.keep_prompt puts a real prompt "
         f"of data.prompt_words={prompt} words (at least {prompt} tokens) out of the loss at its start: no continuation "
         f"token would be trained; {fix}"),
        (not (rows and cfg.train.mask_human_prompt and prompt + 2 >= seq),
         f"train.mask_human_prompt masks the first data.prompt_words={prompt} words of a human row, but "
         f"train.packing=per_document cuts it at train.seq_len={seq} tokens: nothing would be trained; {fix}"),
    ]


def requested_samples(cfg) -> float:
    """The most samples any mitigation set asks for per generation (num_samples x its filters' oversampling)."""
    from madbench.mitigations import build_mitigations
    from madbench.mitigations.compose import oversample_factor

    worst = 1.0
    for mset in cfg.loop.mitigations:
        try:
            worst = max(worst, oversample_factor(build_mitigations(mset, cfg.mitigation_params)))
        except (ZeroDivisionError, OverflowError):
            worst = float("inf")
    return cfg.sampling.num_samples * worst


def validate(cfg: RunConfig) -> None:
    """Check values and names against the registries; raise one clear line."""
    from madbench import mitigations  # noqa: F401  (registers names)
    from madbench.loop import regimes  # noqa: F401  (registers the regimes)
    from madbench.config.limits import check_bounds, check_derived, check_name

    check_name(cfg.name, "name")  # it becomes the run folder's name
    check_bounds(cfg)  # before anything is planned: sizes that would hang or exhaust memory
    from madbench.metrics import METRICS
    from madbench.loop.regimes import parse_regime

    for spec in cfg.loop.regimes:
        parse_regime(spec)
    for mset in cfg.loop.mitigations:
        for name in mset:
            mitigations.MITIGATIONS.get(name)
    for name, params in cfg.mitigation_params.items():
        cls = mitigations.MITIGATIONS.get(name)
        if not isinstance(params, dict):
            raise MadbenchError(f"mitigation_params.{name} must map parameter names to values, got {params!r}")
        cls(**params)  # unknown names (with a did-you-mean) and out-of-range values fail here, before anything runs
    check_derived(requested_samples(cfg))  # samples requested after every filter's oversampling
    for name in cfg.eval.metrics:
        METRICS.get(name)
    from madbench.evaluation.lm_models import LM_EVAL_MODELS

    if cfg.eval.lm_eval_model not in LM_EVAL_MODELS:
        known = LM_EVAL_MODELS.registered()
        raise MadbenchError(f"unknown eval.lm_eval_model '{cfg.eval.lm_eval_model}';"
                            f"{did_you_mean(cfg.eval.lm_eval_model, known)} use {', '.join(known[:-1])} or {known[-1]}")
    if cfg.monitor.rule:
        from madbench.monitoring.callback import check_monitor

        check_monitor(cfg)  # the rule's name (did you mean), alpha, and the panel metrics it needs
    if cfg.eval.include_path:
        from madbench.evaluation.lmeval import check_include

        check_include(cfg.eval.include_path)  # a missing folder: one line, before the task names are looked up
    if cfg.eval.tasks:
        from madbench.evaluation.lmeval import check_tasks

        check_tasks(cfg.eval.tasks, cfg.eval.include_path)
    from madbench.generation.backends import SAMPLING_BACKENDS, unknown as unknown_backend

    sampler = SAMPLING_BACKENDS.get(cfg.sampling.backend) if cfg.sampling.backend in SAMPLING_BACKENDS else None
    checks = [
        (cfg.loop.generations >= 0, "loop.generations must be >= 0"),
        (len(cfg.loop.regimes) > 0, "loop.regimes must name at least one regime"),
        (len(cfg.loop.seeds) > 0, "loop.seeds must list at least one seed"),
        (0.0 <= cfg.loop.real_fraction <= 1.0, "loop.real_fraction must be in [0, 1]"),
        (cfg.loop.init_from in ("previous", "base"), "loop.init_from must be 'previous' or 'base'"),
        (cfg.sampling.num_samples > 0, "sampling.num_samples must be > 0"),
        (cfg.sampling.prompt in ("real", "none"), "sampling.prompt must be 'real' or 'none'"),
        (cfg.sampling.temperature > 0, "sampling.temperature must be > 0"),
        (0 < cfg.sampling.top_p <= 1, "sampling.top_p must be in (0, 1]"),
        (cfg.sampling.max_new_tokens > 0, "sampling.max_new_tokens must be > 0"),
        (cfg.sampling.min_new_tokens <= cfg.sampling.max_new_tokens,
         f"sampling.min_new_tokens={cfg.sampling.min_new_tokens} is over sampling.max_new_tokens="
         f"{cfg.sampling.max_new_tokens}; lower it or raise sampling.max_new_tokens"),
        (not cfg.sampling.keep_prompt or cfg.sampling.prompt == "real",
         "sampling.keep_prompt=true keeps the real prompt in the training document, but sampling.prompt=none has none; "
         "set sampling.prompt=real or sampling.keep_prompt=false"),
        (sampler is not None, unknown_backend(cfg.sampling.backend)),
        (sampler is None or sampler.beam_search or cfg.sampling.num_beams == 1,
         f"sampling.backend={cfg.sampling.backend} samples; beam search needs sampling.backend=hf"),
        (cfg.data.train_docs > 0 and cfg.data.eval_docs > 0, "data.train_docs and data.eval_docs must be > 0"),
        (cfg.train.epochs > 0 and cfg.train.batch_size > 0, "train.epochs and train.batch_size must be > 0"),
        (cfg.train.seq_len >= 16, "train.seq_len must be >= 16"),
        (cfg.model.dtype in ("auto", "float32", "bfloat16"), "model.dtype must be auto, float32 or bfloat16"),
        (cfg.train.mixed_precision in ("auto", "no", "bf16"), "train.mixed_precision must be auto, no or bf16"),
        (cfg.train.packing in PACKINGS, f"train.packing={cfg.train.packing!r} is not one of {', '.join(PACKINGS)};"
         + did_you_mean(cfg.train.packing, PACKINGS)),
        (cfg.train.checkpoint in CHECKPOINTS, f"train.checkpoint={cfg.train.checkpoint!r} is not one of {', '.join(CHECKPOINTS)};"
         + did_you_mean(cfg.train.checkpoint, CHECKPOINTS)),
        (cfg.data.val_docs >= 0, "data.val_docs must be >= 0 (0 = no validation documents)"),
        (cfg.train.checkpoint != "best_val" or cfg.data.val_docs > 0,
         "train.checkpoint=best_val keeps the epoch with the lowest loss on data.val_docs real validation documents, "
         "but data.val_docs=0 leaves none; set data.val_docs (e.g. data.val_docs=32) or train.checkpoint=last"),
        (cfg.loop.share_unit in SHARE_UNITS, f"loop.share_unit={cfg.loop.share_unit!r} is not one of {', '.join(SHARE_UNITS)};"
         + did_you_mean(cfg.loop.share_unit, SHARE_UNITS)),
        *row_checks(cfg),
        (cfg.lora.r > 0, "lora.r must be > 0"),
        (len(cfg.lora.target_modules) > 0, "lora.target_modules must name at least one module, e.g. [q_proj,v_proj]"),
        (cfg.eval.task_docs >= 0, "eval.task_docs must be >= 0 (0 = all held-out documents)"),
    ]
    for ok, message in checks:
        if not ok:
            raise MadbenchError(message)
    from madbench.loop.regimes import check_schedule

    check_schedule(cfg)
    from madbench.loop import shares
    from madbench.loop.regimes import regimes_of

    shares.check(cfg, regimes_of(cfg))  # loop.share_unit=tokens: a regime that counts it, a share whole documents can meet

    for regime in regimes_of(cfg):  # each regime's own pre-flight checks (loop.ecosystem's, ...)
        regime.check(cfg)
    from madbench.models.weights import check as check_method

    check_method(cfg)  # train.method=full: no vLLM, no lora.* options
