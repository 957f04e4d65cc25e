"""The run configuration: frozen dataclasses that are a run's identity.

A config is built from a preset, then an optional YAML/JSON file, then dotted
``key=value`` overrides, and is written into every result::

    madbench run --config my.yaml loop.generations=3 sampling.temperature=0.7

Unknown keys and wrong types fail with one line naming the key and a hint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import yaml

from madbench.errors import MadbenchError
from madbench.registry import did_you_mean


@dataclass(frozen=True)
class ModelConfig:
    name: str = "smollm2-135m"  # embedded name ('smollm2-135m', 'tiny'), a local folder, or a hub name
    dtype: str = "auto"  # 'auto' (bf16 where the CPU/GPU supports it), 'float32', 'bfloat16'
    trust_remote_code: bool = False  # only for hub models you trust
    tiny_size: str = "small"  # tiny model: 'small' (tests) or 'base' (regress)


@dataclass(frozen=True)
class DataConfig:
    corpus: str = "kjv"  # embedded name ('kjv', 'pydoc'), a .txt/.jsonl file or folder, or 'hf:NAME[:SPLIT]'
    text_field: str = "text"  # field to read from JSONL / datasets rows
    doc_words: int = 48  # documents are cut into passages of about this many words
    max_docs: int = 0  # 0 = use the whole corpus (after shuffling), else keep this many
    split_seed: int = 1234  # fixes the train/eval/fresh split; the same for every chain and seed
    eval_docs: int = 128  # held-out human documents, never trained on
    train_docs: int = 64  # real documents per generation (generation 0 trains on these)
    prompt_words: int = 8  # words of a real document used as a sampling prompt
    val_docs: int = 0  # real validation documents for train.checkpoint=best_val (after the training pool; never trained on or scored)


@dataclass(frozen=True)
class EcosystemConfig:  # the 'ecosystem' regime (madbench/loop/ecosystem.py)
    members: int = 3  # K models learning from each other; member m of seed S runs as seed S + 1000 m
    real: str = "fixed"  # real part of the shared mix: 'fixed' (the same documents) or 'fresh' (a new slice each generation)
    lora_ranks: Tuple[int, ...] = ()  # optional LoRA rank per member (K values, the first = lora.r); () = lora.r for all


@dataclass(frozen=True)
class LoopConfig:
    generations: int = 5  # generations after generation 0
    regimes: Tuple[str, ...] = ("fully_synthetic", "synthetic_augmentation", "fresh_data")  # 'name' or 'name/accumulate'
    seeds: Tuple[int, ...] = (0,)  # one chain per regime x seed x mitigation set
    mitigations: Tuple[Tuple[str, ...], ...] = ((),)  # mitigation sets; () is the unmitigated baseline
    real_fraction: float = 0.5  # share of real documents in a mix (augmentation / fresh regimes)
    init_from: str = "previous"  # each generation starts from the 'previous' generation's adapter or the 'base' model
    # contamination schedule of the mixing regimes (madbench/loop/schedules.py); None = 1 - real_fraction every generation:
    # a share 0.7, 'linear:0.1:0.9', 'logistic:0.1:0.9[:MID[:K]]' or one share per generation [0.1,0.3,0.5,...]
    synthetic_share: Any = None
    ecosystem: EcosystemConfig = field(default_factory=EcosystemConfig)  # used by the 'ecosystem' regime only
    share_unit: str = "documents"  # what real_fraction counts: 'documents' or 'tokens' (the trained tokens of the mix; Shumailov's blocks)

    def __post_init__(self):
        if isinstance(self.synthetic_share, list):  # keep the frozen config hashable
            object.__setattr__(self, "synthetic_share", tuple(self.synthetic_share))


@dataclass(frozen=True)
class SamplingConfig:
    num_samples: int = 64  # synthetic documents per generation
    prompt: str = "real"  # 'real': continue short real prompts; 'none': unconditional
    max_new_tokens: int = 64
    min_new_tokens: int = 0  # EOS is not drawn before this many new tokens (0 = off)
    keep_prompt: bool = False  # train on prompt + continuation, the loss on the continuation only (Drayson et al.)
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int = 0  # 0 = off
    num_beams: int = 1
    repetition_penalty: float = 1.0
    batch_size: int = 64  # one decode batch for the default 64 samples: fewer, fuller steps
    backend: str = "hf"  # 'hf': madbench's decode loop (CPU or GPU); 'vllm': vLLM + LoRA requests (GPU, madbench[vllm])


@dataclass(frozen=True)
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: Tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 1e-3
    epochs: int = 2
    batch_size: int = 8
    seq_len: int = 128
    warmup_steps: int = 2
    weight_decay: float = 0.0
    mixed_precision: str = "auto"  # 'auto', 'no', 'bf16'
    method: str = "lora"  # 'lora': train a LoRA adapter; 'full': fine-tune every weight (madbench/models/weights.py)
    packing: str = "packed"  # 'packed': documents end to end in seq_len blocks; 'per_document': one document per row (the papers' rows)
    max_grad_norm: float = 0.0  # clip the gradient norm at this value (the HF Trainer's 1.0); 0 = no clipping
    checkpoint: str = "last"  # the weights a generation keeps: 'last' epoch, or 'best_val' (lowest loss on data.val_docs)
    mask_human_prompt: bool = False  # human rows train with their first data.prompt_words words out of the loss (Drayson's rows)


@dataclass(frozen=True)
class EvalConfig:
    metrics: Tuple[str, ...] = (  # the whole panel of madbench/metrics (`madbench list metrics`)
        "perplexity", "distinct_1", "distinct_2", "distinct_3", "distinct_4", "type_token_ratio", "mean_length",
        "self_bleu", "mtld", "hdd", "unigram_entropy", "zipf_exponent", "compression_ratio", "repetition_4gram",
        "duplicate_rate", "pairwise_cosine_distance", "vendi_score", "frechet_embedding_distance", "mauve",
        "tail_ppl_median", "tail_ppl_p05", "tail_ppl_p95", "tail_below_g0_p05", "tail_above_g0_p95", "tail_w1_log_ppl",
        "rare_word_recall", "rare_token_mass", "rare_token_mass_ratio")
    tasks: Tuple[str, ...] = ("madbench_cloze", "madbench_lambada", "madbench_wikitext")  # lm-eval tasks: madbench/tasks/*.yaml (held-out data) or built-in lm-eval names
    task_docs: int = 64  # documents per local lm-eval task (and lm-eval's limit for built-in tasks); 0 = all
    batch_size: int = 16
    include_path: Tuple[str, ...] = ()  # folders of your own lm-eval task YAMLs (as `lm_eval --include_path`); their tasks go in eval.tasks
    lm_eval_model: str = "madbench"  # lm-eval's model: 'madbench' (madbench's forward, lmeval_model.py), 'hf' (lm-eval's HFLM) or a plug-in's (evaluation/lm_models.py)


@dataclass(frozen=True)
class TrackingConfig:  # names on the --report-to trackers (madbench/reporting/trackers.py); not in the config hash
    experiment: str = ""  # MLflow experiment / W&B project; '' = MLFLOW_EXPERIMENT_NAME / WANDB_PROJECT, else 'madbench'
    run_name: str = ""  # the tracker run's name; '' = the run's name
    tags: Tuple[str, ...] = ()  # 'key=value' or 'label': MLflow tags, W&B tags


@dataclass(frozen=True)
class MonitorConfig:  # the early-warning monitor (madbench/monitoring); a watch on the run, not in the config hash
    rule: str = ""  # '' = off; a monitor rule (`madbench list monitor_rules`), e.g. 'any_leading'
    alpha: float = 0.05  # the per-chain false-alarm rate over the run that the rule is set to
    stop: bool = False  # stop the run (it resumes) when the rule fires, instead of only warning


@dataclass(frozen=True)
class RunConfig:
    name: str = "default"
    seed: int = 0  # base seed; chains use loop.seeds
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    mitigation_params: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # {mitigation: {param: value}}
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # where results are reported, not what runs
    monitor: MonitorConfig = field(default_factory=MonitorConfig)  # alarms on the panel while it runs, not what runs

    def to_dict(self) -> dict:
        return to_plain(self)

    def hash(self) -> str:
        return config_hash(hashed_part(self.to_dict()))


def hashed_part(data: dict) -> dict:
    """The config the hash covers: without ``tracking`` (a destination, not the experiment), ``monitor`` (a watch on
    the run, so a run resumes with another rule) and without keys added
    later while they hold their no-op default (so a run folder made before them keeps its hash and resumes)."""
    data = {k: v for k, v in data.items() if k not in ("tracking", "monitor")}
    if "eval" in data and not data["eval"].get("include_path"):
        data["eval"] = {k: v for k, v in data["eval"].items() if k != "include_path"}
    # keys added later, at their no-op defaults: the hash of before they existed
    for section, noop in (("train", {"packing": "packed", "max_grad_norm": 0.0, "checkpoint": "last", "mask_human_prompt": False}),
                          ("data", {"val_docs": 0}), ("loop", {"share_unit": "documents"})):
        if section in data:
            data[section] = {k: v for k, v in data[section].items() if not (k in noop and v == noop[k])}
    return data


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def config_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(to_plain(data), sort_keys=True).encode()).hexdigest()[:12]


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce a YAML/CLI value to the dataclass field's type, or fail with one line."""
    origin = typing.get_origin(hint)
    try:
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise MadbenchError(f"config key '{key}' must be a mapping, got {value!r}")
            return _build(hint, value, key + ".")
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            if isinstance(value, bool):  # a YAML file's `mixed_precision: no`
                return "yes" if value else "no"
            return str(value)
        if origin is tuple:
            args = typing.get_args(hint)
            if isinstance(value, str):
                value = [v for v in (s.strip() for s in value.split(",")) if v != ""] if value else []
            if not isinstance(value, (list, tuple)):
                value = [value]
            inner = args[0]
            if typing.get_origin(inner) is tuple:  # mitigation sets: "a+b" or [a, b] or "none"
                return tuple(_mitigation_set(v) for v in value) or ((),)
            return tuple(_coerce(v, inner, key) for v in value)
        if origin is dict or hint is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except MadbenchError:
        raise
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(hint, "__name__", str(hint).replace("typing.", ""))
    raise MadbenchError(f"config key '{key}' expects {name}, got {value!r}")


def _mitigation_set(value: Any) -> Tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if str(v) not in ("", "none"))
    text = str(value).strip()
    if text in ("", "none", "baseline"):
        return ()
    return tuple(part.strip() for part in text.split("+") if part.strip())


def _build(cls, data: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise MadbenchError(
                f"unknown config key '{prefix}{key}';{did_you_mean(key, names)} "
                f"valid keys here: {', '.join(sorted(names))}"
            )
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    return cls(**kwargs)


def merge(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` over ``base``: nested mappings merge key by key at every depth
    (``mitigation_params.dedup.threshold`` and ``.shingle`` both survive); any other value replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """'a.b=3' -> {'a': {'b': 3}} with the value parsed as YAML (so 3 is an int)."""
    if "=" not in text:
        raise MadbenchError(f"override '{text}' must look like key=value, for example loop.generations=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise MadbenchError(f"override '{text}' has an empty key")
    from madbench.config.limits import load_yaml

    try:
        value = load_yaml(raw, f"override '{key}'") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if value is None:
        value = ""
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        value = raw.strip()  # YAML 1.1 reads no/yes/on/off as booleans: 'train.mixed_precision=no' means the word
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MadbenchError(f"config file '{path}' not found; pass an existing YAML or JSON file to --config")
    from madbench.config.limits import check_file_size, load_yaml

    check_file_size(path)  # before reading: a 50 MB "config" is not one
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), f"config file '{path}'")
    except UnicodeDecodeError:
        raise MadbenchError(f"config file '{path}' is not UTF-8 text; pass a YAML or JSON file to --config")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MadbenchError(f"config file '{path}' is not valid YAML/JSON{where}; fix its syntax")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MadbenchError(f"config file '{path}' must contain a mapping of keys, not {type(data).__name__}")
    return data


def build_config(base: Optional[dict] = None, file: Optional[str] = None, overrides=()) -> RunConfig:
    data = dict(base or {})
    if file:
        extra = load_file(file)
        if "plugins" in extra:  # `plugins: [my_filter.py]`: loaded now, not part of the run's identity (madbench/plugins.py)
            from madbench.plugins import load_named

            load_named(_plugin_list(extra.pop("plugins")), f"config {file}", base=Path(file).parent)
        data = merge(data, extra)
    for text in overrides:
        data = merge(data, parse_override(text))
    cfg = _build(RunConfig, data)
    from madbench.config.validation import validate

    validate(cfg)
    return cfg


def _plugin_list(value: Any) -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise MadbenchError(f"config key 'plugins' must be a list of plug-in files or modules, got {value!r}")
    return list(value)


def from_dict(data: dict) -> RunConfig:
    return _build(RunConfig, data)
