"""Assemble ``results.json`` from a run folder and check it against its JSON Schema.

The schema (``madbench/schemas/results.schema.json``) is the contract for
``madbench report``, ``submit``, the leaderboard and ``regress``.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

from madbench.results import fileio
from madbench.loop.callbacks import Callback
from madbench.errors import MadbenchError
from madbench.results.run_store import META, REFERENCE_PPL, RunStore

SCHEMA_VERSION = "1.0"


def schema() -> dict:
    return json.loads(resources.files("madbench").joinpath("schemas/results.schema.json").read_text())


def validate_results(data: dict, where: str = "results.json") -> None:
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        field = "/".join(map(str, err.path)) or "(top level)"
        raise MadbenchError(f"{where}: field '{field}': {err.message[:200]}")


def collect(run_dir: Path, cfg, chains, environment: dict, wall_seconds: float | None = None) -> dict:
    from madbench.metrics import METRICS, metric_info

    store = RunStore(run_dir)
    out_chains = []
    for chain in chains:
        gens = []
        for g in range(cfg.loop.generations + 1):
            folder = store.gen_dir(chain.id, g)
            if not store.generation_done(chain.id, g):
                break
            meta = fileio.read_json(folder / META)
            gens.append({
                "generation": g, "metrics": meta["metrics"], "intervals": meta.get("intervals", {}), "train_tokens": meta["train_tokens"],
                "train_docs": meta["train_docs"], "synthetic_fraction": meta["synthetic_fraction"],
                "num_samples": meta["num_samples"], "num_kept": meta["num_kept"], "num_scored": meta.get("num_scored", meta["num_samples"]),
                "seconds": meta["seconds"], "timing": meta.get("timing", {}), "mitigations": meta["mitigations"],
                "train_loss_last": meta["train"].get("train_loss_last"),
                **{k: meta["train"][k] for k in ("mix_tokens", "mix_tokens_trained") if k in meta["train"]},
                **({"synthetic_share_target": meta["synthetic_share_target"]} if "synthetic_share_target" in meta else {}),
                **{k: meta[k] for k in ("prompt_share", "duplicate_rate") if k in meta},
                "train_memory": {k.replace("train_", "", 1): v for k, v in meta["train"].items() if k.endswith("_mb")},
                **_reference_log_ppl(folder),
            })
        out_chains.append({
            "id": chain.id, "regime": chain.regime, "mode": chain.mode, "seed": chain.seed,
            "mitigations": list(chain.mitigations), "generations": gens,
            "complete": len(gens) == cfg.loop.generations + 1,
        })
    metric_keys = sorted({k for c in out_chains for g in c["generations"] for k in g["metrics"]})
    info = {}
    declared = _task_directions(run_dir, [k for k in metric_keys if k not in METRICS])
    for key in metric_keys:
        if key in METRICS:
            info[key] = {k: v for k, v in metric_info(key).items() if k != "name"}
        else:  # a key produced by a metric family (lm-eval task scores...): lm-eval's direction, else a guess
            direction = declared[key] if key in declared else _family_direction(key)
            info[key] = {"higher_is_better": direction, "needs": "model", "description": ""}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_name": cfg.name,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "environment": environment,
        "metrics_info": info,
        "chains": out_chains,
        "complete": all(c["complete"] for c in out_chains),
        "wall_seconds": wall_seconds,
        **_regime_sections(run_dir, cfg, chains),
        **({"protocol": fileio.read_json(store.protocol)} if store.protocol.is_file() else {}),
    }


def _regime_sections(run_dir: Path, cfg, chains) -> dict:
    """Each regime's own top-level section of results.json (Regime.collect: an ecosystem's ``ecosystems``)."""
    from madbench.loop.regimes import regime

    out: dict = {}
    for name in dict.fromkeys(c.regime for c in chains):
        out.update(regime(name).collect(RunStore(run_dir), cfg, [c for c in chains if c.regime == name]))
    return out


def _reference_log_ppl(gen_dir: Path) -> dict:
    """Per-sample log perplexity under generation 0 (the report's tail density figure), when measured."""
    path = gen_dir / REFERENCE_PPL
    if not path.is_file():
        return {}
    return {"reference_log_ppl": [round(v, 4) for v in fileio.read_json(path)["log_ppl"]]}


def _task_directions(run_dir: Path, keys: list) -> dict:
    """lm-eval's own higher_is_better of the task-score ``keys``, read from its saved outputs (lmeval.run_tasks
    writes <generation>/lm_eval/results.json); stops once every key has one."""
    found: dict = {}
    if not keys:
        return found
    from madbench.results.integrity import try_read_json
    from madbench.evaluation.lmeval import directions

    for path in sorted(Path(run_dir).glob("**/lm_eval/results.json")):
        data, why = try_read_json(path)
        if not why and isinstance(data, dict):
            found = {**directions(data), **found}  # the first file that names a key decides it
        if all(k in found for k in keys):
            break
    return found


# lm-eval metric names (task scores are '<task>/<metric>'), decided before the substring guesses below;
# used only where lm-eval's saved output gives no direction (an older run folder, a metric it leaves undirected)
_LMEVAL_HIGHER = {"acc", "acc_norm", "acc_mutual_info", "exact_match", "f1", "mcc", "bleu", "chrf", "rouge1", "rouge2", "rougeL", "em"}
_LMEVAL_LOWER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter", "brier_score"}


def _family_direction(key: str):
    metric = key.rsplit("/", 1)[-1].split(",")[0]
    if "/" in key and metric in _LMEVAL_HIGHER | _LMEVAL_LOWER:
        return metric in _LMEVAL_HIGHER
    lowered = key.lower()
    if any(w in lowered for w in ("perplexity", "bits_per_byte", "loss", "self_bleu", "mauve_distance", "frechet", "repetition")):
        return False
    if any(w in lowered for w in ("acc", "exact_match", "distinct", "entropy", "mauve", "vendi", "mtld")):
        return True
    return None


def write_results(run_dir: Path, data: dict) -> Path:
    from madbench.results.evidence import stamp

    path = RunStore(run_dir).results
    data = stamp(run_dir, data)
    validate_results(data, str(path))
    fileio.write_json(path, data)
    return path


def load_results(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = RunStore(path).results
    if not path.is_file():
        raise MadbenchError(f"{path} not found; give a run folder that contains results.json (made by madbench run)")
    from madbench.results.integrity import try_read_json

    data, why = try_read_json(path)
    if why:
        raise MadbenchError(f"{path} {why}; re-create it from the run folder with: madbench run --resume {path.parent}")
    validate_results(data, str(path))
    from madbench.results.evidence import check

    check(path, data)  # a digit changed after collection, or folders changed since
    return data


def earlier_segments(results_path) -> list:
    """Wall seconds of the earlier segments recorded in an existing results.json ([] for a new run).

    A results.json from before ``wall_segments`` existed counts as one segment of its ``wall_seconds``.
    """
    try:
        data = fileio.read_json(results_path)
    except (OSError, ValueError):
        return []
    if isinstance(data.get("wall_segments"), list):
        return [float(s) for s in data["wall_segments"]]
    return [float(data["wall_seconds"])] if isinstance(data.get("wall_seconds"), (int, float)) else []


class ResultsWriter(Callback):
    """Rewrites RUN/results.json after every computed generation and hands it to the trackers (``--report-to``)."""

    def __init__(self, store, cfg, chains, environment: dict, tracker=None, started: float | None = None):
        self.store, self.cfg, self.chains, self.environment, self.tracker = store, cfg, chains, environment, tracker
        self.started = time.perf_counter() if started is None else started  # this segment's wall time counts from here
        self.earlier = earlier_segments(store.results)  # a resumed or re-run folder keeps the time already spent

    def write(self) -> dict:
        segments = [*self.earlier, round(time.perf_counter() - self.started, 2)]
        data = collect(self.store.root, self.cfg, self.chains, self.environment, round(sum(segments), 2))
        data["wall_segments"] = segments  # one entry per `madbench run` / resume that worked on this folder
        write_results(self.store.root, data)
        if self.tracker:
            self.tracker.on_results(data)  # each newly finished generation, step = generation
        return data

    def on_step_end(self, chain, g, meta, seconds):
        self.write()
