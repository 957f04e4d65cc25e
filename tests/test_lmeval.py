"""lm-eval task scores: held-out task data, a real lm-eval evaluation on the tiny model, scores in a smoke run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import madbench

from madbench.evaluation import lmeval, task_data
from madbench.config.run_config import build_config
from madbench.data.corpus import load_split
from madbench.config.presets import PRESETS

SUITE = ("madbench_cloze", "madbench_lambada", "madbench_wikitext")


def smoke_cfg(*overrides):
    return build_config(PRESETS.get("smoke")(), None, overrides)


def rows(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_suite_yamls_have_version_and_card():
    local = lmeval.local_tasks()
    assert set(SUITE) <= set(local)
    card = (lmeval.TASKS_DIR / "README.md").read_text()
    for name, path in local.items():
        text = path.read_text()
        assert text.startswith("#") and name in card  # a comment block and a line in the card
        import yaml

        spec = yaml.safe_load(text)
        assert spec["task"] == name and spec["metadata"]["version"] and spec["dataset_path"] == "json"


def test_task_data_is_held_out_deterministic_and_well_formed(tmp_path):
    cfg = smoke_cfg("eval.task_docs=16")
    split = load_split(cfg)
    held_out = [d.text for d in split.eval]
    trained = {d.text for d in split.pool + split.fresh}
    configs = lmeval.build_task_data(list(SUITE), split, cfg, tmp_path / "a")
    task_data._BUILT.clear()  # build again from scratch, elsewhere: same bytes
    lmeval.build_task_data(list(SUITE), load_split(cfg), cfg, tmp_path / "b")
    for name in SUITE:
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
        data_file = Path(configs[name]["dataset_kwargs"]["data_files"]["test"])
        assert data_file.is_absolute() and data_file.is_file() and (tmp_path / "a" / f"{name}.yaml").is_file()

    wiki = rows(tmp_path / "a" / "madbench_wikitext.jsonl")
    assert [r["text"] for r in wiki] == held_out[:16] and not trained & {r["text"] for r in wiki}

    cloze = rows(tmp_path / "a" / "madbench_cloze.jsonl")
    assert len(cloze) == 16
    second_halves = [" ".join(t.split()[len(t.split()) // 2:]) for t in held_out]
    for r, text in zip(cloze, held_out):
        assert len(r["choices"]) == lmeval.NUM_CHOICES == len(set(r["choices"]))
        true = r["choices"][r["label"]]
        assert f"{r['context']} {true}" == text  # the true answer is among the choices, at label
        for c in r["choices"]:  # distractors: other held-out passages' second halves, never training text
            assert any(h.startswith(c) for h in second_halves)
            assert not any(c in t for t in trained if len(c) > 40)
    assert len({r["label"] for r in cloze}) > 1  # the answer's position varies

    lam = rows(tmp_path / "a" / "madbench_lambada.jsonl")
    assert len(lam) == 16
    for r, text in zip(lam, held_out):
        assert r["target"].startswith(" ") and r["target"].strip().replace("'", "").replace("-", "").isalpha()
        assert text.startswith(r["context"] + r["target"])


def test_lm_eval_scores_a_saved_generation_like_the_run_did(smoke_run, tmp_path):
    """Re-score the smoke run's generation-0 adapter in memory: same numbers as the run, and the
    loglikelihoods lm-eval reports match a direct forward pass of the model."""
    from peft import PeftModel

    from madbench.models.base_model import load_base, resolve_model

    cfg = smoke_cfg("eval.tasks=[madbench_cloze]")
    split = load_split(cfg)
    tokenizer, base = load_base(resolve_model(cfg, split), cfg)
    model = PeftModel.from_pretrained(base, smoke_run / "gen0" / "seed0" / "adapter")
    out = tmp_path / "gen" / "lm_eval"
    scores = lmeval.run_tasks(model, tokenizer, cfg, split, out)
    assert set(scores) == {"madbench_cloze/acc", "madbench_cloze/acc_norm"}
    assert all(0 <= v <= 1 for v in scores.values())
    in_run = json.loads((smoke_run / "results.json").read_text())["chains"][0]["generations"][0]["metrics"]
    assert scores["madbench_cloze/acc"] == pytest.approx(in_run["madbench_cloze/acc"])

    saved = json.loads((out / "results.json").read_text())
    assert saved["results"]["madbench_cloze"]["acc,none"] == scores["madbench_cloze/acc"]
    samples = rows(out / "samples_madbench_cloze.jsonl")
    assert len(samples) == cfg.eval.task_docs
    correct = []
    for s in samples[:4]:
        doc = s["doc"]
        ctx = tokenizer(doc["context"], add_special_tokens=False)["input_ids"]
        lls = []
        for choice in doc["choices"]:
            ids = tokenizer(doc["context"] + " " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
            lls.append(sum(float(logp[i - 1, ids[i]]) for i in range(len(ctx), len(ids))))
        reported = [float(r[0]) for r in s["filtered_resps"]] if not isinstance(s["filtered_resps"][0], (int, float)) else s["filtered_resps"]
        assert lls == pytest.approx([float(x) for x in reported], abs=1e-3)
        correct.append(float(max(range(len(lls)), key=lls.__getitem__) == doc["label"]))
        assert s["acc"] == correct[-1]


def test_smoke_run_has_task_scores_for_every_generation(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    keys = {"madbench_cloze/acc", "madbench_cloze/acc_norm", "madbench_lambada/acc",
            "madbench_wikitext/word_perplexity", "madbench_wikitext/byte_perplexity", "madbench_wikitext/bits_per_byte"}
    for chain in results["chains"]:
        for g in chain["generations"]:
            assert keys <= set(g["metrics"]), (chain["id"], g["generation"])
            assert all(math.isfinite(g["metrics"][k]) for k in keys)
            assert 0 <= g["metrics"]["madbench_cloze/acc"] <= 1 and g["metrics"]["madbench_wikitext/word_perplexity"] > 1
            folder = smoke_run / "gen0" / "seed0" if g["generation"] == 0 else \
                smoke_run / "chains" / chain["id"] / f"gen_{g['generation']:03d}"
            assert (folder / "lm_eval" / "results.json").is_file()
    info = results["metrics_info"]
    assert all(info[k]["higher_is_better"] is True for k in keys if k.endswith(("/acc", "/acc_norm")))
    assert all(info[k]["higher_is_better"] is False for k in keys if "wikitext" in k)
    for name in SUITE:
        assert len(rows(smoke_run / "lm_eval_data" / f"{name}.jsonl")) == results["config"]["eval"]["task_docs"]


def test_flatten_keeps_metrics_and_drops_stderr_and_aliases():
    flat = lmeval.flatten({"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "sample_len": 8,
                                 "exact_match,strict-match": 0.25, "ppl,none": float("nan")}})
    assert flat == {"t/acc": 0.5, "t/exact_match_strict-match": 0.25}


def test_task_score_directions_are_lm_evals_own(smoke_run, tmp_path):
    """results.json's metrics_info takes higher_is_better from lm-eval's saved output, not from the metric's name."""
    from madbench.results.collect import _task_directions

    saved = json.loads((smoke_run / "gen0" / "seed0" / "lm_eval" / "results.json").read_text())
    declared = lmeval.directions(saved)
    assert declared == {"madbench_cloze/acc": True, "madbench_cloze/acc_norm": True, "madbench_lambada/acc": True,
                        "madbench_wikitext/word_perplexity": False, "madbench_wikitext/byte_perplexity": False,
                        "madbench_wikitext/bits_per_byte": False}
    info = json.loads((smoke_run / "results.json").read_text())["metrics_info"]
    assert all(info[k]["higher_is_better"] is v for k, v in declared.items())
    # a direction only lm-eval knows wins over the name's guess ('acc' would be guessed higher-is-better)
    saved["higher_is_better"]["madbench_cloze"]["acc"] = False
    saved["results"]["madbench_cloze"]["acc,strict"] = 0.5
    folder = tmp_path / "run" / "chains" / "c" / "gen_001" / "lm_eval"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(saved))
    found = _task_directions(tmp_path / "run", ["madbench_cloze/acc", "madbench_cloze/acc_strict"])
    assert found["madbench_cloze/acc"] is False and found["madbench_cloze/acc_strict"] is False
    assert _task_directions(tmp_path / "nothing", ["madbench_cloze/acc"]) == {}  # none saved: the guess decides


@pytest.mark.slow
def test_unknown_task_name_is_one_line_with_a_hint():
    proc = madbench("run", "--preset", "smoke", "--dry-run", "eval.tasks=[madbench_clozee]")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown lm-eval task 'madbench_clozee'" in lines[0] and "did you mean 'madbench_cloze'" in lines[0]
