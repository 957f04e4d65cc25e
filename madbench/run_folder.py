"""What a run folder may continue with: the numerics its finished generations were computed with, and more
seeds or mitigation sets (nothing else) than it was made with.

    madbench run --resume runs/default --allow-processor-change    # continue on another kind of CPU (recorded)
    madbench run --track tiny-fs 'loop.mitigations=[[mix_real],[dedup]]' --output-dir runs/tf   # adds dedup to a [[mix_real]] run
    madbench run --preset smoke 'loop.seeds=[0,1,2]' --output-dir runs/s   # adds seed 2 to a [0,1] run

``madbench run`` (madbench/run.py) calls these before any model loads.
"""

from __future__ import annotations

import json
from typing import Optional

from madbench.config.run_config import RunConfig
from madbench.errors import MadbenchError
from madbench.results import fileio
from madbench.results.run_store import RunStore


def added_chains(saved: dict, cfg: RunConfig) -> Optional[dict]:
    """The seeds and mitigation sets ``cfg`` adds to a run folder whose saved config is ``saved``, when that is all
    that differs: every saved seed and set is kept and no other hashed key changes (a new mitigation's own
    ``mitigation_params`` may be new). A chain depends only on its seed, regime, mode and own mitigations
    (generation 0 is per seed, an ecosystem per mitigation set), so the finished chains stay what they are and
    only the new ones run. ``{"seeds": [...], "mitigations": [(...), ...]}`` (each possibly empty), or None when
    anything else differs or nothing is added."""
    from madbench.config.dotted import flatten
    from madbench.config.run_config import hashed_part

    loop = saved.get("loop") or {}
    old_sets = [tuple(m) for m in loop.get("mitigations") or []]
    new_sets = [tuple(m) for m in cfg.loop.mitigations]
    old_seeds, new_seeds = list(loop.get("seeds") or []), list(cfg.loop.seeds)
    added = {"seeds": [s for s in new_seeds if s not in old_seeds],
             "mitigations": [m for m in new_sets if m not in old_sets]}
    dropped = any(m not in new_sets for m in old_sets) or any(s not in new_seeds for s in old_seeds)
    if dropped or not (added["seeds"] or added["mitigations"]):
        return None
    kept_names = {name for m in old_sets for name in m}

    def rest(data: dict) -> dict:
        data = hashed_part(json.loads(json.dumps(data)))
        data["mitigation_params"] = {k: v for k, v in (data.get("mitigation_params") or {}).items() if k in kept_names}
        return {k: v for k, v in flatten(data).items() if k not in ("loop.mitigations", "loop.seeds")}

    return added if rest(saved) == rest(cfg.to_dict()) else None


def describe(added: dict) -> str:
    """'seed(s) 3, 4 and the mitigation set(s) dedup, mix_real+dedup' for a log line."""
    parts = []
    if added["seeds"]:
        parts.append("seed(s) " + ", ".join(map(str, added["seeds"])))
    if added["mitigations"]:
        parts.append("the mitigation set(s) " + ", ".join("+".join(m) or "none" for m in added["mitigations"]))
    return " and ".join(parts)


def extend(store: RunStore, cfg: RunConfig, log) -> None:
    """A run folder re-run with more seeds or mitigation sets (``added_chains``): its config.json becomes the new
    config (plug-in records kept), an ``extend`` event records the old hash and what was added."""
    from madbench.plugins import digests, loaded_specs, origins

    saved = fileio.read_json(store.config)
    if saved.get("config_hash") == cfg.hash():
        return
    added = added_chains(saved.get("config") or {}, cfg)
    if added is None:
        raise MadbenchError(f"{store.root} holds a run with a different config (hash {saved.get('config_hash')} vs "
                            f"{cfg.hash()}); use --resume {store.root} to continue it, or pick another --output-dir")
    extra = {k: v for k, v in saved.items() if k not in ("config", "config_hash")}
    if origins():
        extra.update(plugins=loaded_specs(), plugin_sha256=digests(), plugin_origins=origins())
    fileio.write_json(store.config, {"config": cfg.to_dict(), "config_hash": cfg.hash(), **extra})
    store.append_event(event="extend", from_config_hash=saved.get("config_hash"), config_hash=cfg.hash(),
                       added=[list(m) for m in added["mitigations"]], added_seeds=added["seeds"])
    log(f"madbench: extending {store.root} with {describe(added)}; its finished chains are kept")


def computed_on(store: RunStore, here: dict, allow: bool) -> list:
    """The numerics (results/environment.numerics) of every segment that computed this run, this one last.

    A run resumed where the processor kind, device or resolved dtypes differ from those its finished generations
    were computed with would continue their chains on another arithmetic path (float32 against bf16, AVX2
    against AMX kernels) and nothing in the numbers would show it: refused in one line unless ``allow``."""
    from madbench.results.integrity import try_read_json

    earlier = []
    if store.events.is_file():
        for line in store.events.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("event") == "start" and isinstance(row.get("numerics"), dict):
                if row["numerics"] not in earlier:
                    earlier.append(row["numerics"])
    if not earlier and store.results.is_file():  # a run started before the start events recorded numerics
        data, why = try_read_json(store.results)
        kind = ((data or {}).get("environment") or {}).get("processor", {}).get("kind") if not why else None
        if kind:
            earlier.append({"processor": kind})
    started = bool(store.finished_gen0_folders() or store.finished_generation_folders())
    first = earlier[0] if earlier else None
    if started and first and any(first.get(k) != here.get(k) for k in first) and not allow:
        diff = ", ".join(f"{k} {first[k]!r} there, {here.get(k)!r} here" for k in first if first.get(k) != here.get(k))
        raise MadbenchError(f"{store.root} was computed on another kind of machine ({diff}); generations computed "
                            f"here would not continue its chains on the same arithmetic: resume it on a machine like "
                            f"the first, start afresh in another folder (madbench regress: --fresh), or continue anyway "
                            f"with: madbench run --resume {store.root} --allow-processor-change (recorded)")
    return [*(e for e in earlier if e != here), here]
