"""The run folder: the one place that knows its layout, what "finished" means and how things are published.

    madbench run --preset smoke --output-dir runs/smoke     # writes this layout
    madbench run --resume runs/smoke --repair               # verify / repair read it back (madbench/results/integrity.py)

Run folder::

    RUN/config.json                  the resolved RunConfig (+ hash, plug-ins)
    RUN/protocol.json                a published protocol's departures (madbench/config/protocols.py), when one was used
    RUN/events.jsonl                 one line per finished step
    RUN/.madbench.lock               one writer per folder (madbench/results/lock.py)
    RUN/gen0/seed<S>/                generation 0, shared by every chain with seed S:
        adapter/ (train.method=lora) or model/ (full)  mix.json  model_metrics.json  samples-<key>.json
    RUN/chains/<chain>/gen_<g>/      one folder per generation, published atomically:
        adapter/ or model/ (g >= 1)  mix.json  samples.jsonl  metrics.json  meta.json  lm_eval/
        reference_ppl.json          per-sample log perplexity under generation 0 (tail_* metrics)
    RUN/<folder>/<id>/gen_<g>.json   a regime's own files (regime_file): ecosystems/ holds an ecosystem's cross-member
                                     metrics (madbench/loop/ecosystem.py)
    RUN/results.json                 everything, schema-checked (schemas/results.schema.json)
    RUN/report/                      tables and figures (madbench/reporting/report.py)
    RUN/tracking/state.json          trackers' run ids and what each logged, for a resume (madbench/reporting/trackers.py)
    RUN/damaged/<time>/              what --repair moved aside

A generation folder appears only when complete (written to a temporary sibling and renamed,
:meth:`RunStore.publishing`), so a crash loses at most the generation in progress and a finished
generation is never recomputed or overwritten. Its record (``meta.json``; generation 0's
``model_metrics.json``), written last, marks it finished and holds the size and SHA-256 of every
other file (madbench/results/integrity.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator, List

from madbench.results import fileio
from madbench.data.corpus import MODEL, Doc
from madbench.errors import MadbenchError

META = "meta.json"  # a chain generation's record, written last: its presence means finished
GEN0_RECORD = "model_metrics.json"  # generation 0's record, written last
SAMPLES = "samples.jsonl"
MIX = "mix.json"
METRICS = "metrics.json"
LM_EVAL = "lm_eval"  # lm-eval's own output folder inside a generation folder
LM_EVAL_RESULTS = "results.json"  # lm-eval's results inside LM_EVAL (madbench/evaluation/lmeval.py)
REFERENCE_PPL = "reference_ppl.json"  # per-sample log perplexity under generation 0 (madbench/metrics/tail.py)
TRACKING_STATE = "tracking/state.json"  # under the run folder: trackers' run ids and what each logged (reporting/trackers.py)
RECORDS = (META, GEN0_RECORD)  # never listed in an integrity record (they hold it)
_GEN = "gen_"
_SEED = "seed"


def sample_row(doc: Doc, kept: bool) -> dict:
    """A sample as a samples.jsonl row: ``text`` is the generated continuation, ``prompt`` the real text it
    continued and ``source`` the id of the pool document the prompt was cut from (null without a prompt)."""
    return {"id": doc.id, "text": doc.text, "prompt": doc.prompt, "source": doc.prompt_source, "kept": kept}


def sample_doc(row: dict, g: int, chain_id: str, path) -> Doc:
    """The Doc of a samples.jsonl (or generation-0 sample cache) row; a row written before samples kept their
    prompt apart (its text is prompt + continuation) is one line, never mixed with the new ones."""
    if "prompt" not in row:
        raise MadbenchError(
            f"{path} was written by an older madbench: its samples hold prompt + continuation as one text (no 'prompt' "
            f"field), which this version would train on as synthetic; start a new run (a new --output-dir) instead of "
            f"resuming this one (its finished generations stay readable)")
    return Doc(row["id"], row["text"], MODEL, g, chain_id, prompt=row["prompt"], prompt_source=row.get("source"))


def _gen_name(g: int) -> str:
    return f"{_GEN}{g:03d}"


class RunStore:
    """Paths, is-done checks, atomic publishing, cleanup, the lock and verification of one run folder."""

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def protocol(self) -> Path:
        return self.root / "protocol.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def tracking_state(self) -> Path:
        return self.root / TRACKING_STATE

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def damaged_dir(self) -> Path:
        return self.root / "damaged"

    @property
    def gen0_root(self) -> Path:
        return self.root / "gen0"

    @property
    def chains_root(self) -> Path:
        return self.root / "chains"

    def gen0_dir(self, seed: int) -> Path:
        return self.gen0_root / f"{_SEED}{seed}"

    def gen0_sample_cache(self, seed: int, key: str) -> Path:
        return self.gen0_dir(seed) / f"samples-{key}.json"

    def chain_dir(self, chain_id: str) -> Path:
        return self.chains_root / chain_id

    def gen_dir(self, chain_id: str, g: int) -> Path:
        return self.chain_dir(chain_id) / _gen_name(g)

    def regime_file(self, folder: str, group_id: str, g: int) -> Path:
        """A regime's own per-generation file for a group of its chains: RUN/<folder>/<group_id>/gen_<g>.json."""
        return self.root / folder / group_id / f"{_gen_name(g)}.json"

    # ------------------------------------------------------------------ reading back
    def read_samples(self, chain_id: str, g: int, kept_only: bool = True) -> List[Doc]:
        """A generation's samples; their provenance (model, generation, chain) comes from the folder they are read from."""
        path = self.gen_dir(chain_id, g) / SAMPLES
        return [sample_doc(r, g, chain_id, path) for r in fileio.read_jsonl(path) if not kept_only or r.get("kept", True)]

    def check_sample_format(self, chain_id: str, g: int) -> None:
        """One line when a finished generation's samples.jsonl was written before samples kept their prompt apart."""
        path = self.gen_dir(chain_id, g) / SAMPLES
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
        if first.strip():
            sample_doc(json.loads(first), g, chain_id, path)

    # ------------------------------------------------------------------ is-done
    def gen0_done(self, seed: int) -> bool:
        return (self.gen0_dir(seed) / GEN0_RECORD).is_file()

    def generation_done(self, chain_id: str, g: int) -> bool:
        return (self.gen_dir(chain_id, g) / META).is_file()

    def finished_generations(self, chain_id: str, generations: int) -> int:
        """Finished generations 0..generations of a chain, from one listing of its folder (no stat per planned one)."""
        try:
            names = {e.name for e in os.scandir(self.chain_dir(chain_id)) if e.name.startswith(_GEN)}
        except OSError:
            return 0
        return sum((self.chain_dir(chain_id) / n / META).is_file() for n in names
                   if n[len(_GEN):].isdigit() and int(n[len(_GEN):]) <= generations)

    # ------------------------------------------------------------------ listing (integrity, repair)
    def finished_gen0_folders(self) -> List[Path]:
        return [d for d in sorted(self.gen0_root.glob(f"{_SEED}*")) if d.is_dir() and (d / GEN0_RECORD).exists()]

    def finished_generation_folders(self) -> List[Path]:
        return [d for d in sorted(self.chains_root.glob(f"*/{_GEN}*")) if d.is_dir() and (d / META).exists()]

    def is_gen0_folder(self, folder: Path) -> bool:
        return Path(folder).parent.name == self.gen0_root.name

    @staticmethod
    def seed_of_gen0(folder: Path) -> int:
        return int(Path(folder).name[len(_SEED):])

    @staticmethod
    def generation_of(folder: Path) -> int:
        return int(Path(folder).name[len(_GEN):])

    def chain_folders(self) -> List[Path]:
        return sorted(self.chains_root.glob("*"))

    def generation_folders(self, chain_dir: Path, start: int = 0) -> List[Path]:
        """A chain's generation folders from ``start`` on (finished or not)."""
        return [p for p in sorted(Path(chain_dir).glob(f"{_GEN}*")) if p.is_dir() and self.generation_of(p) >= start]

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def publishing(self, final: Path, is_main: bool = True) -> Iterator[Path]:
        """``with store.publishing(final) as tmp:`` fill ``tmp``; on success it is renamed to ``final``
        (other processes of a distributed run drop their copy); on failure (disk full, Ctrl-C) it is deleted."""
        tmp = fileio.atomic_dir(final)
        with fileio.removed_on_error(tmp):
            yield tmp
        if is_main:
            fileio.commit_dir(tmp, final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def append_event(self, **row) -> None:
        fileio.append_jsonl(self.events, {"time": round(time.time(), 3), **row})

    def remove_stale_temps(self) -> int:
        """Delete temporary folders and files of a killed or failed earlier attempt (hold the lock)."""
        return fileio.remove_stale_temps(self.root)

    def lock(self, what: str = "run"):
        """``with store.lock():`` one writer per run folder; a second one gets one line naming the holder."""
        from madbench.results.lock import folder_lock

        return folder_lock(self.root, what)
