"""One line per config key: what it means and which values it accepts.

The config reference (docs/reference/config.md) is generated from this table, the dataclasses of
:mod:`madbench.config.run_config` (type, default) and :data:`madbench.config.limits.BOUNDS`
(upper bounds)::

    python -m madbench.docs_gen            # rewrite docs/reference/config.md and cli.md
    python -m madbench.docs_gen --check    # exit 1 when they differ from the code

A key added to a dataclass without a line here fails ``tests/test_docs_reference.py``.
Each entry: dotted key -> (description, allowed values; "" where the type says it all).
"""

from __future__ import annotations

KEY_DOCS = {
    "name": ("the run's name; the run folder is runs/<name> unless --output-dir says otherwise",
             "a plain name: no '/', '\\', '..' or control characters"),
    "seed": ("base seed; chains use loop.seeds", ""),
    # model
    "model": ("the base model", ""),
    "model.name": ("the base model: an embedded name ('smollm2-135m', 'tiny'), a local transformers folder, or a hub name",
                   "see: madbench list models"),
    "model.dtype": ("weights' dtype: 'auto' is bf16 where the CPU/GPU supports it", "auto, float32, bfloat16"),
    "model.trust_remote_code": ("run the model repository's own code (only for hub models you trust; recorded as a warning)", ""),
    "model.tiny_size": ("size of the tiny model: 'small' (tests) or 'base' (regress)", "small, base"),
    # data
    "data": ("the human corpus and how it is split", ""),
    "data.corpus": ("the human corpus: an embedded name ('kjv', 'pydoc'), a .txt/.jsonl/.json file or folder, or 'hf:NAME[:SPLIT]'",
                    "see: madbench list corpora"),
    "data.text_field": ("field to read from JSONL / datasets rows", ""),
    "data.doc_words": ("documents are cut into passages of about this many words", ""),
    "data.max_docs": ("keep this many passages after shuffling; 0 = the whole corpus", ">= 0"),
    "data.split_seed": ("fixes the train/eval/fresh split; the same for every chain and seed", ""),
    "data.eval_docs": ("held-out human documents, never trained on", "> 0"),
    "data.train_docs": ("real documents per generation (generation 0 trains on these)", "> 0"),
    "data.prompt_words": ("words of a real document used as a sampling prompt", ""),
    "data.val_docs": ("real validation documents after the training pool, never trained on or scored: the loss that "
                      "train.checkpoint=best_val picks its epoch by; 0 = none (the split is then as before the key)", ">= 0"),
    # loop
    "loop": ("the recursive loop: generations, regimes, seeds, mitigation sets, the real share", ""),
    "loop.generations": ("generations after generation 0", ">= 0"),
    "loop.regimes": ("the regimes, one chain each: 'name', 'name/replace', 'name/accumulate' or 'name/accumulate_subsample'",
                     "at least one; see: madbench list regimes"),
    "loop.seeds": ("one chain per regime x seed x mitigation set", "at least one"),
    "loop.mitigations": ("mitigation sets, one chain each: 'a+b' composes; 'none' (or []) is the unmitigated baseline",
                         "see: madbench list mitigations"),
    "loop.real_fraction": ("share of real documents in a mix of the mixing regimes (synthetic_augmentation, fresh_data, ecosystem)",
                           "[0, 1]"),
    "loop.init_from": ("each generation starts from the 'previous' generation's weights or from the 'base' model", "previous, base"),
    "loop.synthetic_share": ("contamination schedule of the mixing regimes (madbench/loop/schedules.py); null = 1 - real_fraction "
                             "every generation",
                             "a share in [0, 1], 'linear:START:END', 'logistic:START:END[:MID[:K]]' or one share per generation"),
    "loop.share_unit": ("what loop.real_fraction counts: 'documents' of the mix, or 'tokens' trained on (whole real "
                        "documents nearest the share: Shumailov et al.'s 64-token blocks; madbench/loop/shares.py); every "
                        "generation's meta.json records both shares", "documents, tokens (tokens: synthetic_augmentation)"),
    "loop.ecosystem": ("options of the 'ecosystem' regime (madbench/loop/ecosystem.py)", ""),
    "loop.ecosystem.members": ("K models learning from each other; member m of seed S runs as seed S + 1000 m", ">= 2"),
    "loop.ecosystem.real": ("real part of the shared mix: the same documents every generation, or a new slice each generation",
                            "fixed, fresh"),
    "loop.ecosystem.lora_ranks": ("LoRA rank per member; [] = lora.r for all", "K values, the first = lora.r"),
    # sampling
    "sampling": ("how each generation writes its synthetic documents", ""),
    "sampling.num_samples": ("synthetic documents per generation", "> 0"),
    "sampling.prompt": ("'real': continue short real prompts (distinct pool documents while the pool has enough); "
                        "'none': unconditional", "real, none"),
    "sampling.max_new_tokens": ("tokens generated per sample", "> 0"),
    "sampling.min_new_tokens": ("EOS cannot end a sample before this many new tokens (transformers' min_new_tokens); 0 = off",
                                "0 .. sampling.max_new_tokens"),
    "sampling.keep_prompt": ("a synthetic training document is prompt + continuation, the loss on the continuation only "
                             "(Drayson et al. 2025); false: the continuation alone. Metrics and mitigations see the continuation",
                             "true needs sampling.prompt=real"),
    "sampling.temperature": ("sampling temperature", "> 0"),
    "sampling.top_p": ("nucleus sampling's probability mass", "(0, 1]"),
    "sampling.top_k": ("keep the k most likely tokens; 0 = off", ">= 0"),
    "sampling.num_beams": ("beam search with this many beams; 1 = sampling", "1 with sampling.backend=vllm"),
    "sampling.repetition_penalty": ("transformers' repetition penalty; 1 = off", ""),
    "sampling.batch_size": ("rows per decode batch (one batch for the default 64 samples: fewer, fuller steps)", ""),
    "sampling.backend": ("'hf': madbench's decode loop (CPU or GPU); 'vllm': vLLM with LoRA requests (GPU, madbench[vllm])",
                         "hf, vllm"),
    # lora
    "lora": ("the LoRA adapter (train.method=lora)", ""),
    "lora.r": ("LoRA rank", "> 0"),
    "lora.alpha": ("LoRA alpha (scale = alpha / r)", ""),
    "lora.dropout": ("dropout on the LoRA input", ""),
    "lora.target_modules": ("modules that get a LoRA adapter", ""),
    # train
    "train": ("fine-tuning of every generation", ""),
    "train.learning_rate": ("peak learning rate (linear warm-up, then a cosine decay over all steps)", ""),
    "train.epochs": ("passes over each generation's training mix", "> 0"),
    "train.batch_size": ("blocks per optimizer step", "> 0"),
    "train.seq_len": ("tokens per training row (a packed block, or one document under train.packing=per_document)", ">= 16"),
    "train.warmup_steps": ("learning-rate warm-up steps", ""),
    "train.weight_decay": ("AdamW weight decay", ""),
    "train.mixed_precision": ("'auto' trains in bf16 autocast where supported", "auto, no, bf16"),
    "train.method": ("'lora': train a LoRA adapter; 'full': fine-tune every weight (madbench/models/weights.py)",
                     "lora, full (full: no vllm, no lora.* options)"),
    "train.packing": ("'packed': documents end to end in train.seq_len blocks (a speed trick); 'per_document': one "
                      "document per row, truncated or padded to train.seq_len, padding out of the loss (the papers' rows)",
                      "packed, per_document"),
    "train.max_grad_norm": ("clip the gradient norm at this value before each step (the HF Trainer's default is 1.0); "
                            "0 = no clipping", ">= 0"),
    "train.checkpoint": ("the weights a generation keeps (evaluated, sampled, continued from): the 'last' epoch's, or "
                         "'best_val', the epoch with the lowest loss on the data.val_docs validation documents",
                         "last, best_val (best_val needs data.val_docs > 0)"),
    "train.mask_human_prompt": ("human rows train with their first data.prompt_words words out of the loss, as a kept "
                                "prompt is (Drayson et al.'s rows: the loss on the second half of every row)", ""),
    # eval
    "eval": ("what is measured every generation: the metric panel and lm-eval tasks", ""),
    "eval.metrics": ("metrics computed every generation (madbench/metrics)", "see: madbench list metrics"),
    "eval.tasks": ("lm-eval tasks: madbench's held-out tasks (madbench/evaluation/tasks) or built-in lm-eval names; [] = none",
                   "built-in lm-eval tasks need a connection"),
    "eval.task_docs": ("documents per local lm-eval task (and lm-eval's limit for built-in tasks); 0 = all", ">= 0"),
    "eval.batch_size": ("batch size of evaluation forwards", ""),
    "eval.include_path": ("folders of your own lm-eval task YAMLs (as `lm_eval --include_path`); name their tasks in eval.tasks;"
                          " each YAML's sha256 is recorded", "existing folders"),
    "eval.lm_eval_model": ("lm-eval's model: 'madbench' (madbench's forward, evaluation/lmeval_model.py), 'hf' (lm-eval's HFLM)"
                           " or a plug-in's LM class (evaluation/lm_models.py)", "see: madbench list lm_eval_models"),
    # monitor
    "monitor": ("the early-warning monitor: an alarm rule on each chain's panel while the run goes (madbench/monitoring;"
                " not in the config hash)", ""),
    "monitor.rule": ("'' = off; a monitor rule: cusum_<indicator> or any_leading (docs/monitoring.md)", "see: madbench list monitor_rules"),
    "monitor.alpha": ("the per-chain false-alarm rate over the run's generations that the rule is set to", "0 < alpha < 1"),
    "monitor.stop": ("stop the run when the rule fires (resume with madbench run --resume); false = warn only", "true, false"),
    # tracking
    "tracking": ("names on the --report-to trackers (not in the config hash)", ""),
    "tracking.experiment": ("MLflow experiment / W&B project; '' = MLFLOW_EXPERIMENT_NAME / WANDB_PROJECT, else 'madbench'", ""),
    "tracking.run_name": ("the tracker run's name; '' = the run's name", ""),
    "tracking.tags": ("tags on the tracker run: 'key=value' or 'label'", ""),
    # mitigations
    "mitigation_params": ("{mitigation: {parameter: value}}, e.g. mitigation_params.dedup.threshold=0.3",
                          "parameters of each mitigation: see madbench list mitigations"),
}
