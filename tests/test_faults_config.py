"""Configs that would hang, eat memory or escape their folder (issue 14, cases 6, 10 and the python-tag line of 11).

    .venv/bin/python -m pytest -q tests/test_faults_config.py
"""

from __future__ import annotations

import time

import pytest

from conftest import madbench
from madbench.config.run_config import build_config, load_file
from madbench.errors import MadbenchError
from madbench.config.presets import PRESETS

BOMB = """mitigation_params:
  dedup: {a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"],
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b],
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d],
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e], g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f],
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g], i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]}
"""


@pytest.mark.slow
def test_huge_generations_refused_by_dry_run_in_seconds(tmp_path):
    start = time.time()
    proc = madbench("run", "--preset", "smoke", "loop.generations=1000000000000", "--dry-run",
                    "--output-dir", tmp_path / "r", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "loop.generations = 1000000000000 is over madbench's bound of 1000" in proc.stderr
    assert "MADBENCH_LIMITS=loop.generations=1000000000000" in proc.stderr
    assert time.time() - start < 60


@pytest.mark.parametrize("override,key", [
    ("sampling.num_samples=1000000000000", "sampling.num_samples"),
    ("loop.seeds=" + ",".join(map(str, range(2000))), "loop.seeds"),
    ("sampling.max_new_tokens=10000000", "sampling.max_new_tokens"),
])
def test_sizes_over_their_bound_are_one_line(override, key):
    with pytest.raises(MadbenchError, match=f"^{key} = .* is over madbench's bound"):
        build_config(PRESETS.get("smoke")(), None, [override])


def test_a_bound_is_lifted_deliberately_for_one_key(monkeypatch):
    monkeypatch.setenv("MADBENCH_LIMITS", "loop.generations=5000")
    assert build_config(PRESETS.get("smoke")(), None, ["loop.generations=1500"]).loop.generations == 1500
    with pytest.raises(MadbenchError, match="sampling.num_samples"):
        build_config(PRESETS.get("smoke")(), None, ["sampling.num_samples=1000000000"])
    monkeypatch.setenv("MADBENCH_LIMITS", "loop.generation=5")
    with pytest.raises(MadbenchError, match="MADBENCH_LIMITS entry"):
        build_config(PRESETS.get("smoke")(), None, [])


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert path.stat().st_size < 600
    start = time.time()
    with pytest.raises(MadbenchError, match="expands to more than 100000 values"):
        build_config(PRESETS.get("smoke")(), str(path), [])
    assert time.time() - start < 5
    with pytest.raises(MadbenchError, match="expands to more than"):  # the same through an override
        build_config(PRESETS.get("smoke")(), None, ["mitigation_params=" + BOMB.split(":", 1)[1].replace("\n", " ")
                                                    .replace("dedup:", "{dedup:") + "}"])


def test_oversized_config_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("".join(f"k{i}: {i}\n" for i in range(200_000)))
    start = time.time()
    with pytest.raises(MadbenchError, match="over the 1048576-byte limit"):
        load_file(path)
    assert time.time() - start < 2


def test_python_tag_says_so(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(MadbenchError, match="python tags are not allowed"):
        load_file(path)


@pytest.mark.parametrize("name", ["../../elsewhere", "a/b", "..", "x\\y", "bad\x07name"])
def test_run_names_are_names(name):
    with pytest.raises(MadbenchError, match="is not a plain name"):
        build_config(PRESETS.get("smoke")(), None, [f"name={name}"])


def test_sweep_names_are_names(tmp_path):
    from madbench.experiments.sweep import load_spec

    path = tmp_path / "s.yaml"
    path.write_text("preset: smoke\nname: ../../elsewhere\ngrid: {loop.seeds: [0]}\n")
    with pytest.raises(MadbenchError, match="sweep name '../../elsewhere' is not a plain name"):
        load_spec(str(path))


def test_names_with_dots_inside_stay_valid():
    assert build_config(PRESETS.get("smoke")(), None, ["name=smoke.v2_t=0.7"]).name == "smoke.v2_t=0.7"


# ---------------------------------------------------------------- case 8: hostile or odd corpora
@pytest.mark.parametrize("name,content,message", [
    ("ls.txt", None, "is binary (it holds NUL bytes), not text"),
    ("noise.txt", bytes(range(1, 32)) * 200 + b"some words here", "does not look like text"),
    ("numbers.jsonl", b"1\n2\n3\n", "line 1 is a JSON number, not an object"),
    ("objects.jsonl", b'{"text": {"a": 1}}\n{"text": {"a": 2}}\n', "field 'text' of row 1 holds an object, not a string"),
    ("ints.jsonl", b'{"text": 5}\n{"text": 6}\n', "field 'text' of row 1 holds a number, not a string"),
])
def test_non_text_corpora_are_refused_naming_the_problem(tmp_path, name, content, message):
    import sys
    from pathlib import Path

    from madbench.data.corpus import load_texts

    path = tmp_path / name
    path.write_bytes(content if content is not None else Path(sys.executable).resolve().read_bytes()[:200_000])
    with pytest.raises(MadbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_texts(str(path))


@pytest.mark.slow
def test_binary_corpus_is_one_line_before_any_training(tmp_path):
    import sys
    from pathlib import Path

    path = tmp_path / "program.txt"
    path.write_bytes(Path(sys.executable).resolve().read_bytes()[:200_000])
    proc = madbench("run", "--preset", "smoke", f"data.corpus={path}", "--output-dir", tmp_path / "r", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "program.txt is binary" in proc.stderr.splitlines()[-1]
    assert not (tmp_path / "r" / "gen0").exists()


def test_plain_text_with_a_few_odd_bytes_is_still_text(tmp_path):
    from madbench.data.corpus import load_texts

    path = tmp_path / "latin1.txt"
    path.write_bytes(("Caf\xe9 au lait, " * 200).encode("latin-1") + b"\n\n" + b"plain words " * 300)
    assert len(load_texts(str(path))) == 2
