"""lm-eval models by name (``eval.lm_eval_model``): madbench's own, lm-eval's HFLM, or a plug-in's ``LM`` class.

    madbench run --preset smoke eval.lm_eval_model=hf
    madbench --plugin my_lm.py run --preset smoke eval.lm_eval_model=my_lm
    madbench list lm_eval_models

An entry is an lm-eval ``LM`` subclass (or a factory returning one) built as
``entry(model, tokenizer, batch_size=N)`` around the generation's in-memory model and tokenizer.
A plug-in registers one with ``@LM_EVAL_MODELS.register("my_lm")`` in a ``--plugin`` file, or an
entry point in the ``madbench.lm_eval_models`` group. The built-ins are lazy: lm-eval is imported
only when a run scores tasks.
"""

from __future__ import annotations

from madbench.registry import Registry

LM_EVAL_MODELS = Registry("lm-eval model")
LM_EVAL_MODELS.add_lazy("madbench", "madbench.evaluation.lmeval_model:MadbenchLM")
LM_EVAL_MODELS.add_lazy("hf", "madbench.evaluation.lm_models:hf_lm")


def hf_lm(model, tokenizer, batch_size: int):
    """lm-eval's own HFLM around the in-memory model (float32 softmax), for comparison with 'madbench'."""
    import torch
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, softmax_dtype=torch.float32)


def make_lm(kind: str, model, tokenizer, batch_size: int, scores=None):
    """The lm-eval model named by eval.lm_eval_model around an in-memory model; madbench's own also gets the
    generation's ScoreCache (``scores``: madbench/models/scores.py), whose perplexity forward it reuses."""
    if kind == "madbench":
        return LM_EVAL_MODELS.get(kind)(model, tokenizer, batch_size=batch_size, scores=scores)
    return LM_EVAL_MODELS.get(kind)(model, tokenizer, batch_size=batch_size)
