"""results.json tied to its evidence: digests of its chains and of the generation folders it was collected from.

    madbench report runs/smoke       # refuses a results.json edited after it was collected (one line)
    madbench run --resume runs/smoke # re-collects results.json from the checksummed generation folders

``write_results`` stores ``evidence``: the SHA-256 of the ``chains`` block as written, and of the
generation records (``meta.json``) it was read from. ``load_results`` (hence ``report``, ``table``,
``submit`` and the Python API) recomputes both: a flipped digit in results.json, or a generation folder
changed or repaired since, is one line naming the way back. A results.json from before evidence existed
is read as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from madbench.errors import MadbenchError
from madbench.results.run_store import META, RunStore


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chains_digest(chains) -> str:
    return hashlib.sha256(_canonical(chains)).hexdigest()


def folders_digest(run_dir: Path, chains) -> str:
    """SHA-256 over each collected generation's record file (missing ones count as missing)."""
    from madbench.results.integrity import sha256_file

    store = RunStore(run_dir)
    digest = hashlib.sha256()
    for chain in chains:
        for gen in chain.get("generations") or []:
            meta = store.gen_dir(chain["id"], int(gen["generation"])) / META
            digest.update(f"{chain['id']}/{gen['generation']}:{sha256_file(meta) if meta.is_file() else 'missing'}\n".encode())
    return digest.hexdigest()


def stamp(run_dir: Path, data: dict) -> dict:
    """``data`` with its ``evidence`` block (called by write_results)."""
    return {**data, "evidence": {"chains_sha256": chains_digest(data["chains"]),
                                 "folders_sha256": folders_digest(run_dir, data["chains"])}}


def check(path: Path, data: dict) -> None:
    """One line when results.json disagrees with its own digest or with the generation folders beside it."""
    evidence = data.get("evidence")
    if not isinstance(evidence, dict):
        return  # written before evidence existed
    run_dir = Path(path).parent
    again = f"re-collect it from the generation folders with: madbench run --resume {run_dir} (add --repair if a folder is damaged)"
    if evidence.get("chains_sha256") != chains_digest(data["chains"]):
        raise MadbenchError(f"{path} was changed after it was collected (its chains no longer match their digest); {again}")
    if RunStore(run_dir).chains_root.is_dir() and evidence.get("folders_sha256") != folders_digest(run_dir, data["chains"]):
        raise MadbenchError(f"{path} disagrees with the generation folders of {run_dir} (changed or repaired since it "
                            f"was collected); {again}")
