"""A regime of the ecosystem kind from a plug-in file: its own chain plan, order, mix, hook and results section.

    .venv/bin/python -m pytest -q tests/test_regime_plugin.py

The plug-in's ``pair`` regime runs two models per seed (seeds S and S + 500) that train, generation
by generation, only on each other's previous samples; after each generation it writes a file of its
own into the run folder and adds a ``pairs`` section to results.json. Nothing in madbench names it:
the run goes through ``madbench run --plugin pair.py`` on the smoke preset's tiny model.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import madbench

PAIR = '''
"""Two models that learn only from each other (a plug-in Regime)."""
import dataclasses

from madbench.loop.regimes import REGIMES, Chain, Regime
from madbench.results import fileio

OFFSET = 500


class Pair(Regime):
    name = "pair"

    def plan(self, cfg, mode, seed, mitigations):
        return [Chain(self.name, mode, seed + OFFSET * m, mitigations) for m in (0, 1)]

    def order(self, cfg, chains):
        return [(c, g) for g in range(cfg.loop.generations + 1) for c in chains]

    def other(self, chain):
        seed = chain.seed - OFFSET if chain.seed >= OFFSET else chain.seed + OFFSET
        return dataclasses.replace(chain, seed=seed)

    def mix(self, rctx, ctx, chain):
        peer = self.other(chain)
        docs = ctx.history(peer, rctx.generation)[rctx.generation - 1]
        return [dataclasses.replace(d, id=f"s{peer.seed}-{d.id}") for d in docs]

    def after_generation(self, ctx, chain, g):
        members = sorted([chain, self.other(chain)], key=lambda c: c.seed)
        if ctx.is_main and all(ctx.store.generation_done(c.id, g) for c in members):
            counts = {c.id: len(ctx.store.read_samples(c.id, g)) for c in members}
            fileio.write_json(ctx.store.regime_file("pairs", members[0].id, g), {"generation": g, "kept": counts})

    def collect(self, store, cfg, chains):
        found = sorted(p.relative_to(store.root).as_posix() for p in (store.root / "pairs").rglob("*.json"))
        return {"pairs": found}

    def job(self, chain):
        return min(chain, self.other(chain), key=lambda c: c.seed).id


REGIMES.register("pair")(Pair())
'''


@pytest.mark.slow
def test_a_plugin_regime_plans_orders_mixes_and_collects_its_own_chains(tmp_path):
    plugin = tmp_path / "pair.py"
    plugin.write_text(textwrap.dedent(PAIR))
    out = tmp_path / "run"
    madbench("run", "--plugin", plugin, "--preset", "smoke", "eval.tasks=[]", "eval.metrics=[perplexity,distinct_2]",
             "loop.regimes=[pair]", "loop.generations=2", "--output-dir", out, check=True)
    a, b = "pair-replace-s0", "pair-replace-s500"
    done = [(e["chain"], e["generation"]) for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
            if e.get("event") == "generation_done"]
    assert done == [(a, 0), (b, 0), (a, 1), (b, 1), (a, 2), (b, 2)]  # its own order: generation by generation
    for me, peer, peer_seed in ((a, b, 500), (b, a, 0)):
        for g in (1, 2):
            mix = json.loads((out / "chains" / me / f"gen_{g:03d}" / "mix.json").read_text())["documents"]
            samples = [json.loads(line) for line in (out / "chains" / peer / f"gen_{g - 1:03d}" / "samples.jsonl").read_text().splitlines()]
            assert [d["id"] for d in mix] == [f"s{peer_seed}-{s['id']}" for s in samples if s["kept"]]  # the other's samples
            assert {d["source"] for d in mix} == {"synthetic"}
    for g in (0, 1, 2):
        row = json.loads((out / "pairs" / a / f"gen_{g:03d}.json").read_text())
        assert row["generation"] == g and set(row["kept"]) == {a, b} and min(row["kept"].values()) > 0
    results = json.loads((out / "results.json").read_text())
    assert sorted(c["id"] for c in results["chains"]) == [a, b]
    assert results["pairs"] == [f"pairs/{a}/gen_{g:03d}.json" for g in (0, 1, 2)]
