"""Issue 28, cases 5, 6 and 8: every config value bounded and checked before anything runs.

    .venv/bin/python -m pytest -q tests/test_faults_bounds.py

Each value below passed pre-flight at 43094ef and then failed late (a traceback during or after
generation-0 training), hung, exhausted memory or was silently accepted. Now each is one line from
:func:`madbench.config.preflight.preflight` (what ``madbench run --dry-run`` calls), naming the key.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import madbench
from madbench.config.limits import BOUNDS, RANGES
from madbench.config.preflight import preflight
from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.errors import MadbenchError

REFUSED = [  # (override, a word the one line must name)
    # case 5: derived sizes
    ("mitigation_params.verifier_filter.keep_fraction=1e-9", "sampling.requested", ["loop.mitigations=[verifier_filter]"]),
    ("mitigation_params.dedup.oversample=1e9", "sampling.requested", ["loop.mitigations=[dedup]"]),
    ("loop.ecosystem.lora_ranks=[16,100000000]", "lora_ranks[1]", ["loop.regimes=[ecosystem]", "loop.ecosystem.members=2"]),
    ("train.seq_len=1048576", "train.attention_cells", []),
    ("loop.seeds=[" + ",".join(map(str, range(900))) + "]", "chains", ["loop.regimes=[ecosystem]", "loop.ecosystem.members=50"]),
    # case 6: values that made sampling hang on NaN logits
    ("train.learning_rate=.inf", "train.learning_rate", []),
    ("mitigation_params.watermark_filter.delta=.inf", "delta", ["loop.mitigations=[watermark_filter]"]),
    ("sampling.temperature=1e-300", "sampling.temperature", []),
    # case 8
    ("train.learning_rate=-1", "train.learning_rate", []),
    ("train.learning_rate=.nan", "train.learning_rate", []),
    ("train.weight_decay=.nan", "train.weight_decay", []),
    ("lora.dropout=1.5", "lora.dropout", []),
    ("lora.target_modules=[nope]", "lora.target_modules", []),
    ("lora.target_modules=[]", "lora.target_modules", []),
    ("eval.batch_size=0", "eval.batch_size", []),
    ("sampling.batch_size=0", "sampling.batch_size", []),
    ("sampling.batch_size=-4", "sampling.batch_size", []),
    ("sampling.top_k=-5", "sampling.top_k", []),
    ("sampling.repetition_penalty=0", "sampling.repetition_penalty", []),
    ("data.doc_words=0", "data.doc_words", []),
    ("train.warmup_steps=-5", "train.warmup_steps", []),
    ("lora.alpha=-3", "lora.alpha", []),
    ("sampling.num_beams=0", "sampling.num_beams", []),
    ("sampling.temperature=.inf", "sampling.temperature", []),
    ("data.prompt_words=0", "data.prompt_words", []),
    ("mitigation_params.truncated_ce.gamma=1e-300", "gamma", ["loop.mitigations=[truncated_ce]"]),
    ("mitigation_params.watermark_filter.z_threshold=.nan", "z_threshold", ["loop.mitigations=[watermark_filter]"]),
]


@pytest.mark.parametrize("override,word,extra", REFUSED, ids=[r[0][:50] for r in REFUSED])
def test_value_refused_before_anything_runs(override, word, extra):
    with pytest.raises(MadbenchError) as info:
        preflight(build_config(PRESETS.get("smoke")(), None, [*extra, override]))
    line = str(info.value)
    assert "\n" not in line and word in line, line


def test_steep_logistic_schedule_plans():
    """logistic:0.1:0.9:1:-1000 died with OverflowError in --dry-run; a share at MID, START after it."""
    from madbench.loop.schedules import shares

    assert shares("logistic:0.1:0.9:1:-1000", 3) == [0.5, 0.1, 0.1]  # MID at generation 1, START after
    assert shares("logistic:0.1:0.9:2:1000", 3)[0] == pytest.approx(0.1)


def test_detector_weights_survive_a_large_bias():
    """strength=1000 overflowed math.exp at generation 1; with bias 1000 the weights keep their order, the largest
    is 1, and none is 0 (a draw without replacement must still be able to fill its quota)."""
    from madbench.mitigations.detector import drayson_draw, importance_weights

    w = importance_weights([0.1, 0.5, 0.9, 2.0], 1000.0)
    assert w == sorted(w) and w[-1] == 1.0 and all(math.isfinite(x) and x > 0 for x in w)
    assert sorted(drayson_draw(w, 3, 3, "s")) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_nucleus_sample_refuses_nan_rows_instead_of_hanging():
    from madbench.generation.sampling import nucleus_sample

    scores = torch.zeros(3, 50)
    scores[1, 7] = float("nan")
    with pytest.raises(MadbenchError, match="learning_rate"):
        nucleus_sample(scores, 0.9)


def test_every_range_and_bound_names_a_real_key():
    """The one table the pre-flight, the docs and these tests share: every key is a config field."""
    cfg = PRESETS.get("smoke")()
    built = build_config(cfg)
    derived = {"chains", "sampling.requested", "train.attention_cells", "sweep.variants"}
    for key in [*RANGES, *(k for k in BOUNDS if k not in derived)]:
        section, _, name = key.partition(".")
        assert hasattr(getattr(built, section), name), key


def test_sweep_of_three_100_value_axes_refused_at_once(tmp_path):
    """A 1.9 KB sweep file of 3 x 100-value axes (1,000,000 variants) kept sweep --dry-run busy for hours."""
    from madbench.experiments.sweep import plan

    spec = {"preset": "smoke", "grid": {"sampling.top_p": [round(0.5 + i / 250, 4) for i in range(100)],
                                        "sampling.temperature": [round(0.5 + i / 100, 3) for i in range(100)],
                                        "sampling.max_new_tokens": list(range(8, 108))}}
    with pytest.raises(MadbenchError, match="sweep.variants = 1000000"):
        plan(spec)


@pytest.mark.slow
@pytest.mark.parametrize("args,word", [
    (["run", "--preset", "smoke", "--dry-run", "train.learning_rate=.nan"], "train.learning_rate"),
    (["run", "--preset", "smoke", "--dry-run", "loop.synthetic_share=logistic:0.1:0.9:1:-1000",
      "loop.regimes=[synthetic_augmentation]"], None),
    (["threshold", "--tolerance", "nan", "--dry-run"], "finite"),
])
def test_cli_one_line(tmp_path, args, word):
    proc = madbench(*args, "--output-dir", tmp_path / "out", timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if word is None:
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        assert proc.returncode == 2 and word in proc.stderr, proc.stderr[-2000:]


def test_docs_list_every_bound_and_range():
    """docs/hardening.md is written from the same table: a key added to it must appear there too."""
    from conftest import ROOT

    page = (ROOT / "docs" / "hardening.md").read_text()
    missing = [k for k in [*RANGES, *BOUNDS] if f"`{k}`" not in page]
    assert not missing, missing
