"""Leaderboard tracks: frozen protocols that rank mitigations against the same baseline.

    madbench list tracks
    madbench run --track tiny-fs 'loop.mitigations=[length_filter]'      # your mitigation beside the baseline
    madbench run --track tiny-fs --dry-run                               # the frozen protocol

A track fixes everything but the mitigation: model, corpus, regime, generations,
sampling, training, evaluation and seeds. ``madbench run --track NAME`` accepts only
``loop.mitigations`` and ``mitigation_params.*`` on top of it (anything else is one
line listing the keys that would change the protocol) and always runs the unmitigated
baseline beside the mitigations. :func:`rank` orders a track run's mitigations by their
effect on perplexity against that baseline, with 95% seed intervals, and puts what each
spent beside it: its share of human documents in the training mixes. A mitigation over
the track's ``human_budget`` (watermark_filter's replace action, mix_real at a high
fraction) buys health with human data; it is ranked after those within budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from madbench.config.dotted import flatten
from madbench.errors import MadbenchError
from madbench.registry import Registry

TRACKS = Registry("track")
FREE = ("name", "loop.mitigations", "mitigation_params")  # what a submission may choose; the rest is the protocol


@dataclass(frozen=True)
class Track:
    name: str
    description: str
    preset: str
    overrides: Tuple[str, ...]  # applied over the preset: together, the frozen protocol
    human_budget: float = 0.1  # the most human data a mitigation may add to the mixes (mean share) and rank in budget
    metric: str = "perplexity"  # ranked at the last generation
    notes: Dict[str, Any] = field(default_factory=dict)

    def config(self, extra=()):
        from madbench.config.run_config import build_config
        from madbench.config.presets import PRESETS

        return build_config(PRESETS.get(self.preset)(), None, [f"name=track-{self.name}", *self.overrides, *extra])


def track(name: str, description: str, preset: str, overrides, **kw) -> None:
    TRACKS.register(name)(Track(name, description, preset, tuple(overrides), **kw))


track("tiny-fs", "tiny model, fully synthetic loop, 6 seeds x 4 generations; about 10 min for every built-in mitigation "
      "on a 2-core AVX2 EPYC", "tiny",
      ["loop.regimes=[fully_synthetic]", "loop.seeds=[0,1,2,3,4,5]", "loop.generations=4"])
track("smollm2-fs", "SmolLM2-135M on KJV, fully synthetic loop, 6 seeds x 5 generations; on 2-core AMD EPYCs with "
      "avx512_bf16 2.3 to 4.6 h for the baseline and all 8 mitigations (seeds 0-2 took 68 min on one, 3-5 took 138 min "
      "on another); seeds may run on several machines and be merged (madbench submit --merge-with)", "default",
      ["loop.regimes=[fully_synthetic]", "loop.seeds=[0,1,2,3,4,5]", "loop.generations=5",
       "eval.metrics=[perplexity,distinct_2,self_bleu,mauve]"])


def protocol(config: dict) -> Dict[str, Any]:
    """The dotted keys of a config that a track freezes (everything but FREE)."""
    return {k: v for k, v in flatten(config).items() if not any(k == f or k.startswith(f + ".") for f in FREE)}


def protocol_diff(config: dict, tr: Track) -> List[str]:
    """Dotted keys where ``config`` departs from the track's protocol. A key the config lacks counts as its default
    (how madbench reads an older config), so deleting a key is a departure unless the protocol holds the default;
    a value turned into a mapping (``loop.generations.x``) is a departure of the key it replaced."""
    from madbench.config.run_config import RunConfig

    mine, theirs = protocol(config), protocol(tr.config().to_dict())
    defaults = protocol(RunConfig().to_dict())
    changed = {k for k in theirs if _plain(mine.get(k, defaults.get(k, _MISSING))) != _plain(theirs[k])}
    changed |= {p for k in mine if k not in theirs for p in theirs if k.startswith(p + ".")}
    return sorted(changed)


_MISSING = object()


def chain_diff(data: dict, tr: Track) -> List[str]:
    """How a track submission's chains depart from the protocol: every regime x seed x mitigation set of the config,
    each complete with every generation; an empty list when they match."""
    from madbench.loop.regimes import parse_regime

    cfg = tr.config()
    sets = {tuple(m) for m in (data["config"].get("loop") or {}).get("mitigations") or [[]]
            if isinstance(m, (list, tuple))} | {()}
    wanted = {(*parse_regime(r), seed, m) for r in cfg.loop.regimes for seed in cfg.loop.seeds for m in sets}
    have = [(c["regime"], c["mode"], c["seed"], tuple(c["mitigations"])) for c in data["chains"]]
    out = []
    if set(have) != wanted or len(have) != len(wanted):
        extra, missing = sorted(set(have) - wanted), sorted(wanted - set(have))
        out.append(f"chains are not regimes {list(cfg.loop.regimes)} x seeds {list(cfg.loop.seeds)} x the config's "
                   f"mitigation sets (missing {len(missing)}, unexpected {len(extra)}, {len(have)} chains)")
    short = [c["id"] for c in data["chains"] if not c.get("complete") or
             [g["generation"] for g in c["generations"]] != list(range(cfg.loop.generations + 1))]
    if short or not data["run"].get("complete"):
        out.append(f"the run is incomplete ({', '.join(short[:3]) or 'run.complete is false'}): every chain needs "
                   f"generations 0..{cfg.loop.generations}; incomplete runs are not ranked")
    return out


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def resolve(name: str, config_file=None, overrides=()):
    """The RunConfig of ``madbench run --track NAME``: the protocol, the user's mitigations, the baseline always."""
    from madbench.config.run_config import build_config, load_file, merge, parse_override

    tr = TRACKS.get(name)
    base = tr.config().to_dict()
    data = dict(base)
    if config_file:
        extra = load_file(config_file)
        if "plugins" in extra:  # as in config.build_config
            from pathlib import Path

            from madbench.config.run_config import _plugin_list
            from madbench.plugins import load_named

            load_named(_plugin_list(extra.pop("plugins")), f"config {config_file}", base=Path(config_file).parent)
        data = merge(data, extra)
    for text in overrides:
        data = merge(data, parse_override(text))
    cfg = build_config(data)
    # a shard (some of the track's seeds, run here, merged later by madbench submit --merge-with) follows the protocol
    changed = [] if is_shard(cfg.to_dict(), tr) else protocol_diff(cfg.to_dict(), tr)
    if changed:
        raise MadbenchError(f"--track {name} freezes the protocol; these settings would change it: {', '.join(changed)} "
                            f"(only loop.mitigations, mitigation_params.* and, for a shard run on one of several "
                            f"machines, loop.seeds as a subset of {tr.config().loop.seeds} may be set)")
    sets = [s for s in cfg.loop.mitigations if s]
    if not sets:
        raise MadbenchError(f"--track {name} compares a mitigation with the baseline: give loop.mitigations=[your_mitigation]")
    return build_config(cfg.to_dict(), None, [f"loop.mitigations=[none,{','.join('+'.join(s) for s in sets)}]"])


def is_shard(config: dict, tr: Track) -> bool:
    """The track's protocol but for some, not all, of its seeds: a part of a track run split across machines,
    submitted merged (madbench/leaderboard/merge.py)."""
    if protocol_diff(config, tr) != ["loop.seeds"]:
        return False
    mine, theirs = set(map(int, (config.get("loop") or {}).get("seeds") or [])), set(tr.config().loop.seeds)
    return bool(mine) and mine < theirs


def human_share(chain: dict) -> float:
    """Mean share of human documents in the chain's training mixes after generation 0 (0 for pure self-training)."""
    fractions = [1.0 - g["synthetic_fraction"] for g in chain["generations"]
                 if g["generation"] >= 1 and isinstance(g.get("synthetic_fraction"), (int, float))]
    return sum(fractions) / len(fractions) if fractions else 0.0


def rank(results: dict, tr: Track) -> List[dict]:
    """Rows, best first: mitigation, effect on the track's metric vs the baseline (%, with 95% seed intervals),
    whether the intervals separate, human share of the mixes and whether it is within the track's budget."""
    from madbench.metrics import metric_info
    from madbench.reporting.stats import compare, seed_summary

    hib = metric_info(tr.metric)["higher_is_better"]
    groups: Dict[str, List[dict]] = {}
    for c in results["chains"]:
        groups.setdefault("+".join(c["mitigations"]) or "baseline", []).append(c)
    base = groups.pop("baseline", [])
    last = lambda cs: [c["generations"][-1]["metrics"].get(tr.metric) for c in cs if c["generations"]]  # noqa: E731
    base_share = seed_summary([human_share(c) for c in base])["mean"] or 0.0
    rows = []
    for label, chains in groups.items():
        cmp = compare(last(base), last(chains), hib)
        ref = cmp["a"]["mean"]
        pct = (lambda v: None if v is None or not ref else (v - ref) / abs(ref) * 100)  # noqa: E731
        share = seed_summary([human_share(c) for c in chains])["mean"] or 0.0
        rows.append({"mitigation": label, "effect_pct": pct(cmp["b"]["mean"]), "ci95_pct": (pct(cmp["b"]["ci95_low"]), pct(cmp["b"]["ci95_high"])),
                     "baseline_ci95_pct": (pct(cmp["a"]["ci95_low"]), pct(cmp["a"]["ci95_high"])),
                     "separated": cmp["separated"], "better": cmp["better"], "seeds": cmp["b"]["n"],
                     "human_share": share, "added_human_share": share - base_share,
                     "within_budget": share - base_share <= tr.human_budget + 1e-9})
    sign = -1 if hib else 1  # best effect first: lower perplexity, higher distinct-2
    rows.sort(key=lambda r: (not r["within_budget"], r["effect_pct"] is None, sign * (r["effect_pct"] or 0.0)))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows
