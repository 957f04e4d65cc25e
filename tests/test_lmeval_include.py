"""eval.include_path: the user's own lm-eval task folder, as `lm_eval --include_path DIR` takes it.

    .venv/bin/python -m pytest -q tests/test_lmeval_include.py

A real task YAML (multiple choice over a JSONL file) in a folder outside madbench, scored on the
tiny model by a real run; the run records the folder and a hash of the YAMLs in it.
"""

from __future__ import annotations

import json

import pytest
from conftest import madbench

from madbench.evaluation.lmeval import include_record, include_tasks

TASK = """task: my_colours
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.fixture
def task_folder(tmp_path):
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    data = folder / "colours.jsonl"
    rows = [{"question": f"In the beginning God created the heaven and the {w}", "choices": ["earth", "sky", "sea"], "label": 0}
            for w in ("", "new", "old", "whole", "bright", "dark")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "my_colours.yaml").write_text(TASK.format(data=data))
    return folder


def test_the_folders_tasks_are_found_and_hashed_by_content(task_folder):
    assert include_tasks([task_folder]) == ["my_colours"]
    before = include_record([task_folder])
    assert list(before["folders"][str(task_folder.resolve())]) == ["my_colours.yaml"]
    (task_folder / "my_colours.yaml").write_text((task_folder / "my_colours.yaml").read_text().replace("1.0", "2.0"))
    assert include_record([task_folder])["hash"] != before["hash"]


@pytest.mark.slow
def test_a_run_scores_the_included_task_and_records_its_files(task_folder, tmp_path):
    out = tmp_path / "run"
    madbench("run", "--preset", "smoke", "--output-dir", out, "loop.regimes=[fully_synthetic]", "loop.generations=1",
             "eval.metrics=[perplexity]", f"eval.include_path=[{task_folder}]", "eval.tasks=[madbench_cloze,my_colours]",
             check=True, timeout=900)
    results = json.loads((out / "results.json").read_text())
    metrics = results["chains"][0]["generations"][1]["metrics"]
    assert 0 <= metrics["my_colours/acc"] <= 1 and "madbench_cloze/acc" in metrics
    record = results["environment"]["lm_eval_include"]
    assert record == include_record([task_folder]) and results["config"]["eval"]["include_path"] == [str(task_folder)]
    lm = json.loads((out / "chains" / results["chains"][0]["id"] / "gen_001" / "lm_eval" / "results.json").read_text())
    assert lm["madbench"]["include"]["hash"] == record["hash"] and lm["n-samples"]["my_colours"]["effective"] == 6


def test_a_missing_include_folder_or_unknown_task_is_one_line_before_anything_runs(task_folder, tmp_path):
    proc = madbench("run", "--preset", "smoke", "--dry-run", f"eval.include_path=[{tmp_path / 'nope'}]")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not a folder" in proc.stderr
    proc = madbench("run", "--preset", "smoke", "--dry-run", f"eval.include_path=[{task_folder}]", "eval.tasks=[my_colour]")
    assert proc.returncode == 2 and "did you mean 'my_colours'" in proc.stderr, proc.stderr
