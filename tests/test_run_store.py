"""RunStore (the run folder's one owner) and document provenance, on real folders and real mitigations."""

from __future__ import annotations

import json

import pytest

from madbench.results import integrity
from madbench.results import fileio
from madbench.loop.callbacks import EventLog, ProgressLog
from madbench.data.corpus import Doc
from madbench.errors import MadbenchError
from madbench.loop.runner import Chain
from madbench.mitigations import MitigationContext, build_mitigations
from madbench.results.run_store import GEN0_RECORD, META, RunStore
from madbench.loop.steps import Mix

CHAIN = Chain("fully_synthetic", "replace", 0, ())


def _finish(store: RunStore, chain_id: str, g: int, rows) -> None:
    """Publish a generation folder the way the loop does: files, then the record with their checksums, last."""
    with store.publishing(store.gen_dir(chain_id, g)) as tmp:
        fileio.write_jsonl(tmp / "samples.jsonl", rows)
        fileio.write_json(tmp / META, {"generation": g, "num_samples": len(rows), "integrity": integrity.record(tmp)})


def test_layout_is_done_and_listing(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.gen_dir(CHAIN.id, 2) == tmp_path / "run" / "chains" / CHAIN.id / "gen_002"
    assert store.gen0_dir(7) == tmp_path / "run" / "gen0" / "seed7"
    assert store.regime_file("ecosystems", "ecosystem-replace-s0", 1) == tmp_path / "run" / "ecosystems" / "ecosystem-replace-s0" / "gen_001.json"
    assert not store.generation_done(CHAIN.id, 0) and store.finished_generations(CHAIN.id, 3) == 0
    for g in (0, 1, 4):
        _finish(store, CHAIN.id, g, [{"id": f"g{g:03d}-00000", "text": "a b", "prompt": "", "source": None, "kept": True}])
    store.gen_dir(CHAIN.id, 2).mkdir()  # unfinished: no record
    assert [store.generation_done(CHAIN.id, g) for g in range(5)] == [True, True, False, False, True]
    assert store.finished_generations(CHAIN.id, 3) == 2  # generation 4 is beyond the plan
    assert [store.generation_of(p) for p in store.finished_generation_folders()] == [0, 1, 4]
    assert [store.generation_of(p) for p in store.generation_folders(store.chain_dir(CHAIN.id), start=1)] == [1, 2, 4]
    (store.gen0_dir(3)).mkdir(parents=True)
    fileio.write_json(store.gen0_dir(3) / GEN0_RECORD, {"metrics": {}})
    assert store.gen0_done(3) and not store.gen0_done(4)
    assert store.finished_gen0_folders() == [store.gen0_dir(3)] and store.is_gen0_folder(store.gen0_dir(3))


def test_publishing_is_atomic_and_stale_temps_are_removed(tmp_path):
    store = RunStore(tmp_path)
    final = store.gen_dir(CHAIN.id, 1)
    with pytest.raises(RuntimeError):
        with store.publishing(final) as tmp:
            (tmp / "half.json").write_text("{")
            raise RuntimeError("disk full")
    assert not final.exists() and not list(final.parent.iterdir())  # nothing half-written is left behind
    with store.publishing(final, is_main=False) as tmp:  # another process of a distributed run drops its copy
        (tmp / "x").write_text("x")
    assert not final.exists() and not list(final.parent.iterdir())
    fileio.atomic_dir(store.gen_dir(CHAIN.id, 2))  # what a killed process leaves
    assert store.remove_stale_temps() == 1 and not list(final.parent.iterdir())


def test_verify_names_a_damaged_file_and_read_samples_carries_provenance(tmp_path):
    store = RunStore(tmp_path)
    rows = [{"id": "g001-00000", "text": "kept one", "prompt": "a real", "source": "h000007", "kept": True},
            {"id": "h000001", "text": "dropped", "prompt": "", "source": None, "kept": False}]
    _finish(store, CHAIN.id, 1, rows)
    integrity.verify(store.root)
    integrity.verify_chains(store, [CHAIN], 2)
    docs = store.read_samples(CHAIN.id, 1)
    assert [(d.id, d.source, d.generation, d.model, d.prompt, d.prompt_source) for d in docs] == \
        [("g001-00000", "model", 1, CHAIN.id, "a real", "h000007")]
    assert len(store.read_samples(CHAIN.id, 1, kept_only=False)) == 2
    samples = store.gen_dir(CHAIN.id, 1) / "samples.jsonl"
    samples.write_text(samples.read_text().replace("kept one", "kept 0ne"))
    with pytest.raises(MadbenchError, match="samples.jsonl does not match its SHA-256"):
        integrity.verify_chains(store, [CHAIN], 2)


def test_callbacks_log_events_and_progress(tmp_path):
    store, lines = RunStore(tmp_path), []
    log = EventLog(store)
    log.on_gen0_end(0, 1.234)
    log.on_generation_end(CHAIN, 1, {"seconds": 2.5})
    events = [json.loads(line) for line in store.events.read_text().splitlines()]
    assert [(e["event"], e.get("seed"), e.get("generation")) for e in events] == [("gen0_trained", 0, None), ("generation_done", None, 1)]
    progress = ProgressLog(lines.append, ("perplexity", "distinct_2"))
    progress.on_run_begin(4, 1)
    progress.on_step_end(CHAIN, 1, {"metrics": {"self_bleu": 0.5, "perplexity": 12.0}}, 30.0)
    assert lines == [f"[2/4] {CHAIN.id} gen 1: perplexity=12 (30s, ETA 1.0 min)"]


def test_realness_comes_from_provenance_not_from_the_id():
    """Before: an id starting with 'h' made a document real (three places parsed ids)."""
    sneaky = [Doc(f"h{i:06d}", f"model text {i}", "model", 1, CHAIN.id) for i in range(8)]  # synthetic, 'h' ids
    human = [Doc(f"x{i}", f"human text {i}", source="human") for i in range(4)]  # real, ids without 'h'
    manifest = Mix.of(2, sneaky + human).manifest
    assert [d["source"] for d in manifest["documents"]] == ["synthetic"] * 8 + ["real"] * 4
    ctx = MitigationContext(2, 0, human, history={1: sneaky}, train_docs=4)
    _, stats = build_mitigations(["mix_real"], {"mix_real": {"fraction": 0.25}})[0].transform_mix(sneaky, ctx)
    assert stats["real_added"] == 2 and stats["real_share"] == 0.25
    mix, stats = build_mitigations(["accumulate"], {})[0].transform_mix([], ctx)
    assert len(mix) == 12 and stats["real_docs"] == 4 and stats["synthetic_docs"] == 8
    with pytest.raises(ValueError, match="source"):
        Doc("g0", "text", source="synthetic")
