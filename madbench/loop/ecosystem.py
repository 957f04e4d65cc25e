"""The ``ecosystem`` regime: K models that learn from each other's output.

    madbench run --preset tiny loop.regimes=[ecosystem] loop.ecosystem.members=3
    madbench run --preset tiny 'loop.regimes=[ecosystem,fully_synthetic]' loop.ecosystem.real=fresh loop.real_fraction=0.2

Each member is a chain of its own (its folder, metrics, resume, leaderboard row):
member m of seed S runs as seed ``S + 1000 m`` (own generation 0, LoRA init, data order
and samples; member 0 shares generation 0 with the other chains of seed S). At every
generation g >= 1 each member trains on a shared mix: ``loop.real_fraction`` real
documents (``loop.ecosystem.real``: the same ``fixed`` set, or a ``fresh`` slice each
generation; ``loop.synthetic_share`` schedules apply) plus the samples of *all*
members from generation g - 1 (``/accumulate``: from every earlier generation), taken
round-robin over members so each contributes equally. The loop therefore runs an
ecosystem generation by generation, all members before the next generation.
``loop.ecosystem.lora_ranks=[16,4,64]`` gives the members different LoRA ranks (the first is ``lora.r``).

Ecosystem metrics, per generation, from the members' kept samples, in
``RUN/ecosystems/<id>/gen_<g>.json`` and results.json ``ecosystems``:

  cross_self_bleu      mean BLEU-4 of each member's samples against the other members' samples as references
                       (self-BLEU across members; rises as the members converge)
  embedding_distance   mean cosine distance between the sentence embeddings of samples of two different members
                       (all-MiniLM-L6-v2; falls as the members converge)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from madbench.results import fileio
from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.loop.regimes import REGIMES, Chain, Regime, RegimeContext, _trim, fresh_slice, parse_regime, real_count

NAME = "ecosystem"
STRIDE = 1000  # member m of seed S runs as seed S + STRIDE * m
REAL_SOURCES = ("fixed", "fresh")
FOLDER = "ecosystems"  # RUN/ecosystems/<id>/gen_<g>.json: the metrics of each generation
SAMPLES_PER_MEMBER = 32  # samples per member used by the ecosystem metrics (cost is quadratic)


@dataclass(frozen=True)
class EcosystemContext(RegimeContext):
    """A RegimeContext with what only the ecosystem's mix reads."""

    peers: Dict[int, Dict[int, List[Doc]]] = field(default_factory=dict)  # {member: {generation: kept samples}}
    real_source: str = "fixed"  # 'fixed' (pool prefix) or 'fresh' (a new slice each generation)


def shared_mix(ctx: EcosystemContext) -> List[Doc]:
    """K members train on shared real data plus every member's previous-generation samples (loop.ecosystem)."""
    real = fresh_slice(ctx, ctx.generation) if ctx.real_source == "fresh" else ctx.pool[: real_count(ctx)]
    per_member = []
    for m in sorted(ctx.peers):
        history = ctx.peers[m]
        gens = sorted(history) if ctx.accumulate else [ctx.generation - 1]
        per_member.append([d for g in gens for d in history.get(g, [])])
    longest = max((len(docs) for docs in per_member), default=0)
    shared = [docs[i] for i in range(longest) for docs in per_member if i < len(docs)]  # round-robin: equal shares
    return real + _trim(ctx, shared)


class Ecosystem(Regime):
    """The ecosystem as a Regime: a chain per member, run generation by generation, metrics after each generation."""

    name = NAME
    mixes_real = True

    def plan(self, cfg, mode: str, seed: int, mitigations: Tuple[str, ...]) -> List[Chain]:
        return [Chain(NAME, mode, s, mitigations) for s in member_seeds(cfg, seed)]

    def order(self, cfg, chains: List[Chain]) -> list:
        """Generation by generation: a member's generation g trains on every member's generation g - 1."""
        return [(c, g) for g in range(cfg.loop.generations + 1) for c in chains]

    def mix(self, rctx: RegimeContext, ctx, chain: Chain) -> List[Doc]:
        fields = {f.name: getattr(rctx, f.name) for f in dataclasses.fields(RegimeContext)}
        return shared_mix(EcosystemContext(**fields, peers=peer_history(ctx, chain, rctx.generation),
                                           real_source=ctx.cfg.loop.ecosystem.real))

    def __call__(self, rctx: EcosystemContext) -> List[Doc]:
        return shared_mix(rctx)

    def train_config(self, cfg, chain: Chain):
        return member_config(cfg, chain.seed)

    def after_generation(self, ctx, chain: Chain, g: int) -> None:
        finish_generation(ctx, chain, g)

    def collect(self, store, cfg, chains: List[Chain]) -> dict:
        found = collect(store.root, cfg, chains)
        return {"ecosystems": found} if found else {}

    def check(self, cfg) -> None:
        check(cfg)

    def job(self, chain: Chain) -> str:
        return ecosystem_id(chain)

    def uses_fresh(self, cfg) -> bool:
        return cfg.loop.ecosystem.real == "fresh"

    def fresh_option(self, cfg) -> str:
        return "loop.ecosystem.real=fresh"


REGIMES.register(NAME)(Ecosystem())


def member_seeds(cfg, seed: int) -> List[int]:
    return [seed + STRIDE * m for m in range(cfg.loop.ecosystem.members)]


def member_config(cfg, seed: int):
    """The config a chain of ``seed`` trains with: ``lora.r`` from ``loop.ecosystem.lora_ranks`` for ecosystem members."""
    ranks = cfg.loop.ecosystem.lora_ranks
    if not ranks or seed < STRIDE or not in_use(cfg):
        return cfg  # member 0 (and every other chain) keeps lora.r: it shares generation 0 with its seed's chains
    import dataclasses

    return dataclasses.replace(cfg, lora=dataclasses.replace(cfg.lora, r=ranks[member_index(seed)]))


def base_seed(seed: int) -> int:
    return seed % STRIDE


def member_index(seed: int) -> int:
    return seed // STRIDE


def in_use(cfg) -> bool:
    return any(parse_regime(spec)[0] == NAME for spec in cfg.loop.regimes)


def check(cfg) -> None:
    """Pre-flight checks of loop.ecosystem, when the run has the ecosystem regime."""
    if not in_use(cfg):
        return
    eco = cfg.loop.ecosystem
    if eco.members < 2:
        raise MadbenchError(f"loop.ecosystem.members={eco.members}: an ecosystem needs at least 2 members that learn "
                            "from each other; set loop.ecosystem.members=3, or use fully_synthetic for a single model")
    if eco.members > 50:
        raise MadbenchError(f"loop.ecosystem.members={eco.members} is more than 50; lower it")
    if eco.real not in REAL_SOURCES:
        from madbench.registry import did_you_mean

        raise MadbenchError(f"loop.ecosystem.real='{eco.real}' is unknown;{did_you_mean(eco.real, REAL_SOURCES)} use fixed or fresh")
    ranks = eco.lora_ranks
    if ranks and (len(ranks) != eco.members or min(ranks) < 1):
        raise MadbenchError(f"loop.ecosystem.lora_ranks lists {len(ranks)} ranks for {eco.members} members; give one positive "
                            "rank per member, or () for lora.r everywhere")
    if ranks and ranks[0] != cfg.lora.r:
        raise MadbenchError(f"loop.ecosystem.lora_ranks starts with {ranks[0]} but lora.r={cfg.lora.r}: member 0 shares "
                            f"generation 0 with the run's other chains of its seed; set lora.r={ranks[0]} or start the list with {cfg.lora.r}")
    big = [s for s in cfg.loop.seeds if not 0 <= s < STRIDE]
    if big:
        raise MadbenchError(f"loop.seeds has {big[0]}: with the ecosystem regime seeds must be in [0, {STRIDE}) "
                            f"(member m of seed S runs as seed S + {STRIDE} m)")


def peer_history(ctx, chain, upto: int) -> Dict[int, Dict[int, List[Doc]]]:
    """{member: {generation: kept samples}} of every member of ``chain``'s ecosystem, ids prefixed 'm<member>-'."""
    out = {}
    for peer in members_of(ctx.cfg, chain):
        m = member_index(peer.seed)
        out[m] = {g: [dataclasses.replace(d, id=f"m{m}-{d.id}") for d in docs] for g, docs in ctx.history(peer, upto).items()}
    return out


def members_of(cfg, chain) -> list:
    return [Chain(chain.regime, chain.mode, s, chain.mitigations) for s in member_seeds(cfg, base_seed(chain.seed))]


def ecosystem_id(chain) -> str:
    return f"{NAME}-{chain.mode}-s{base_seed(chain.seed)}" + (f"-{'+'.join(chain.mitigations)}" if chain.mitigations else "")


def metrics(samples: Dict[int, List[str]]) -> dict:
    """cross_self_bleu and embedding_distance of members' sample sets ({member: texts})."""
    import numpy as np
    from sacrebleu.metrics import BLEU

    from madbench.metrics.embeddings import embed
    from madbench.metrics.lexical import words

    sets = {m: [t for t in texts[:SAMPLES_PER_MEMBER]] for m, texts in samples.items()}
    tokenized = {m: [" ".join(words(t)) for t in texts] for m, texts in sets.items()}
    bleu = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.1, effective_order=True)
    scores = []
    for m, hyps in tokenized.items():
        refs = [r for other, texts in tokenized.items() if other != m for r in texts]
        scores += [bleu.sentence_score(h, refs).score / 100.0 for h in hyps if h and refs]
    vectors = {m: embed(texts) for m, texts in sets.items() if texts}
    members = sorted(vectors)
    distances = [float((1.0 - vectors[a] @ vectors[b].T).mean()) for i, a in enumerate(members) for b in members[i + 1:]]
    return {"cross_self_bleu": sum(scores) / len(scores) if scores else None,
            "embedding_distance": float(np.mean(distances)) if distances else None,
            "members": len(samples), "samples_per_member": min((len(t) for t in sets.values()), default=0)}


def finish_generation(ctx, chain, g: int) -> None:
    """Once every member has generation g, write the ecosystem metrics of g (atomic; skipped when present);
    ``ctx`` is the run's StepContext (madbench/loop/context.py)."""
    store = ctx.store
    path = store.regime_file(FOLDER, ecosystem_id(chain), g)
    peers = members_of(ctx.cfg, chain)
    if path.is_file() or not ctx.is_main or not all(store.generation_done(p.id, g) for p in peers):
        return
    samples = {member_index(peer.seed): [d.text for d in store.read_samples(peer.id, g)] for peer in peers}
    from madbench.results.integrity import write_checked_json

    write_checked_json(path, {"generation": g, "members": [p.id for p in peers], **metrics(samples)})


def collect(run_dir, cfg, chains) -> list:
    """The results.json ``ecosystems`` section: one entry per ecosystem, its members and metrics per generation."""
    from madbench.results.integrity import read_checked_json
    from madbench.results.run_store import RunStore

    store = RunStore(run_dir)
    out, seen = [], set()
    for chain in chains:
        if chain.regime != NAME or ecosystem_id(chain) in seen:
            continue
        seen.add(ecosystem_id(chain))
        gens = []
        for g in range(cfg.loop.generations + 1):
            path = store.regime_file(FOLDER, ecosystem_id(chain), g)
            if not path.is_file():
                break
            row, why = read_checked_json(path)
            if why:
                raise MadbenchError(f"{path} {why}; recompute it with: madbench run --resume {run_dir} --repair")
            gens.append({k: row[k] for k in ("generation", "cross_self_bleu", "embedding_distance")})
        out.append({"id": ecosystem_id(chain), "members": [p.id for p in members_of(cfg, chain)], "generations": gens})
    return out
