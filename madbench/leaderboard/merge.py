"""Merge a run's seeds into an earlier submission of the same protocol: a track's seeds run on several machines.

    madbench run --track smollm2-fs 'loop.mitigations=[[mix_real]]' 'loop.seeds=[3,4,5]' --output-dir runs/shard-345
    madbench submit runs/shard-345 --merge-with leaderboard/submissions/track-smollm2-fs-...json
    madbench submit runs/shard-345 --seeds 3,4 --track open --out part.json    # the seeds that finished, as a part

A chain depends on its own seed only (tests/test_run_folder.py: seed 1 grown into a folder equals seed 1 run
alone), so seeds run apart and merged give the submission one run of all the seeds gives, provided the two
parts computed the same way. That is what is checked before anything is written, each refusal one line:
the earlier file validates; the configs are equal but for ``loop.seeds``; the seeds do not overlap; the
library versions, the processor kind, device and dtype (``environment.computed_on``), the metrics and the
plug-in declarations are the same. The merged file records every part (its seeds, git commit, date and wall
time) under ``environment.parts``, so a reader sees it was assembled. Within one processor kind a rerun is
bit-identical (docs/leaderboard.md gives the check made for smollm2-fs), which is why a kind must not change.
"""

from __future__ import annotations

import copy
from pathlib import Path

from madbench.config.dotted import flatten
from madbench.errors import MadbenchError

# Environment fields that change what a chain computes: they must be equal across parts.
SAME_ENVIRONMENT = ("versions", "device", "torch_threads", "attention", "decode_step")


def load_earlier(path: Path) -> dict:
    """The earlier submission, checked as ``madbench leaderboard validate`` checks it (it is untrusted input), but for
    its track's protocol: a part holds some of the track's seeds (the merged file is checked against the track)."""
    from madbench.leaderboard import bundle, validate

    try:
        data = bundle.load_untrusted(Path(path))
        validate.check_data(data, track=False)
    except bundle.Invalid as exc:
        raise MadbenchError(f"--merge-with {path} does not validate: {exc}; merge with a valid submission")
    return data


def merge_results(results: dict, earlier: dict, earlier_path: Path) -> dict:
    """``results`` (this run's results.json dict) with the earlier submission's chains added, as one results dict
    that :func:`madbench.leaderboard.bundle.build_submission` turns into the merged submission."""
    where = f"--merge-with {earlier_path}"
    mine, theirs = flatten(results["config"]), flatten(earlier["config"])
    differ = sorted(k for k in set(mine) | set(theirs) if k != "loop.seeds" and mine.get(k) != theirs.get(k))
    if differ:
        raise MadbenchError(f"{where}: its config differs from this run's at {', '.join(differ[:8])}"
                            f"{' ...' if len(differ) > 8 else ''}; only loop.seeds may differ")
    seeds_here = sorted({int(c["seed"]) for c in results["chains"]})
    seeds_there = sorted({int(c["seed"]) for c in earlier["chains"]})
    both = sorted(set(seeds_here) & set(seeds_there))
    if both:
        raise MadbenchError(f"{where}: seed(s) {', '.join(map(str, both))} are in both; run only the seeds it lacks")
    env_here, env_there = results["environment"], earlier["environment"]
    for key in SAME_ENVIRONMENT:
        if env_here.get(key) != env_there.get(key):
            raise MadbenchError(f"{where}: environment.{key} differs ({str(env_there.get(key))[:80]} there, "
                                f"{str(env_here.get(key))[:80]} here); merge only parts computed the same way")
    kinds = lambda env: sorted({(n.get("processor"), n.get("device"), n.get("dtype"))  # noqa: E731
                                for n in env.get("computed_on") or [] if isinstance(n, dict)})
    if kinds(env_here) != kinds(env_there):
        raise MadbenchError(f"{where}: computed on {kinds(env_there)} there and {kinds(env_here)} here (processor, "
                            "device, dtype); a chain is bit-comparable only on the same kind")
    if results["metrics_info"] != earlier["metrics_info"]:
        raise MadbenchError(f"{where}: its metrics differ from this run's; merge runs of one evaluation panel")
    if not earlier["run"].get("complete"):
        raise MadbenchError(f"{where}: it is marked incomplete; merge complete runs")

    order = [list(m) for m in results["config"]["loop"].get("mitigations") or [[]]]
    rank = lambda c: (int(c["seed"]), order.index(list(c["mitigations"]))  # noqa: E731
                      if list(c["mitigations"]) in order else len(order), str(c["id"]))
    chains = sorted([*earlier["chains"], *results["chains"]], key=rank)
    parts = [*(env_there.get("parts") or [_part(earlier["run"], env_there, seeds_there)]),
             _part({"wall_seconds": results.get("wall_seconds")}, env_here, seeds_here)]
    wall = [p.get("wall_seconds") for p in parts]
    total = round(sum(wall), 2) if all(isinstance(w, (int, float)) for w in wall) else None
    return {**_with_seeds(results, chains, total), "environment": {**env_here, "parts": parts}}


def select_seeds(results: dict, seeds: list) -> dict:
    """``results`` restricted to some seeds whose chains all finished (a run stopped before its last seeds, kept as a
    part to merge later); its wall time is the sum of those chains' generation times."""
    have = sorted({int(c["seed"]) for c in results["chains"]})
    missing = sorted(set(seeds) - set(have))
    if missing:
        raise MadbenchError(f"--seeds {','.join(map(str, seeds))}: the run has no seed {missing[0]}; it has {have}")
    chains = [c for c in results["chains"] if int(c["seed"]) in seeds]
    unfinished = [c["id"] for c in chains if not c.get("complete")]
    if unfinished:
        raise MadbenchError(f"--seeds {','.join(map(str, seeds))}: chain {unfinished[0]} has not finished; choose seeds "
                            f"whose chains all finished, or finish the run with madbench run --resume")
    wall = sum(float(g.get("seconds") or 0) for c in chains for g in c.get("generations") or [])
    return _with_seeds(results, chains, round(wall, 2))


def _with_seeds(results: dict, chains: list, wall_seconds) -> dict:
    """``results`` holding ``chains``: its config's ``loop.seeds`` (and so its hash) are the chains' seeds."""
    from madbench.config.run_config import config_hash, hashed_part

    config = copy.deepcopy(results["config"])
    config["loop"]["seeds"] = sorted({int(c["seed"]) for c in chains})
    return {**results, "config": config, "config_hash": config_hash(hashed_part(config)), "chains": chains,
            "complete": all(c.get("complete") for c in chains), "wall_seconds": wall_seconds}


def _part(run: dict, env: dict, seeds: list) -> dict:
    """One part of a merged submission: which seeds, computed where and when."""
    return {"seeds": seeds, "git": env.get("git"), "date": env.get("date"), "wall_seconds": run.get("wall_seconds"),
            "processor": (env.get("processor") or {}).get("kind")}
