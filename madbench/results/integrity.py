"""Integrity records of finished generations, checked before a run builds on them.

    madbench run --resume runs/smoke            # refuses to build on a damaged generation (one line)
    madbench run --resume runs/smoke --repair   # moves damaged generations (and what depends on them)
                                                # to runs/smoke/damaged/<time>/ and recomputes them
    madbench report runs/smoke                  # refuses to report a damaged run folder

A finished generation's record (see madbench/results/run_store.py: the chain generation's or generation 0's
record file) is written last and holds ``integrity``: the byte count and SHA-256 of every other file in its folder.
:func:`scan` re-reads them; a torn sample file, a truncated record, a deleted
``adapter/`` or a flipped byte is a :class:`Damage` naming the file. Folders written before
integrity records existed are checked for what can be checked (readable JSON, whole sample
files, an adapter where one is needed). Nothing is ever deleted: ``--repair`` moves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from madbench.errors import MadbenchError
from madbench.results.run_store import GEN0_RECORD, META, RECORDS, SAMPLES, RunStore

RECORD_VERSION = 1
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class Damage:
    folder: Path  # the generation folder (RUN/chains/<chain>/gen_XXX or RUN/gen0/seed<S>)
    file: Path  # the damaged or missing file
    why: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(folder: Path, skip: tuple = RECORDS) -> dict:
    """{'version', 'files': {relative path: {'bytes', 'sha256'}}} of every file under ``folder``."""
    folder = Path(folder)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel not in skip:
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return {"version": RECORD_VERSION, "files": files}


def try_read_json(path: Path) -> tuple[Optional[dict], Optional[str]]:
    """(data, None) or (None, why): a run folder can come from elsewhere, so it is read with the bounded reader
    (madbench/results/untrusted.py); NaN stays allowed, madbench's writer spells a metric without data so."""
    from madbench.results import untrusted

    try:
        data = untrusted.read(path, nonfinite=True, max_string=16 * untrusted.MAX_STRING)
    except untrusted.UntrustedJSON as exc:
        if exc.message == "is missing":
            return None, "is missing"
        return None, (f"is refused at field '{exc.field}': {exc.message}" if exc.field != "(file)" else
                      exc.message if exc.message.startswith(("is ", "not ", "cannot ")) else f"is refused: {exc.message}")
    if not isinstance(data, dict):
        return None, "does not hold a JSON object"
    return data, None


CHECKSUM = "content_sha256"  # the key under which a checked JSON file holds the digest of the rest of it


def _digest(data: dict) -> str:
    body = {k: v for k, v in data.items() if k != CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_checked_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically with the SHA-256 of its content inside (the generation-0 sample cache, ecosystem files)."""
    from madbench.results import fileio

    fileio.write_json(path, {**data, CHECKSUM: _digest(data)})


def read_checked_json(path: Path) -> tuple[Optional[dict], Optional[str]]:
    """(data without the checksum, None) or (None, why): unreadable, or content that no longer matches its checksum.
    A file written before checksums existed is read as it is."""
    data, why = try_read_json(path)
    if why:
        return None, why
    if CHECKSUM in data and data[CHECKSUM] != _digest(data):
        return None, "does not match its SHA-256 checksum (edited or corrupted)"
    return {k: v for k, v in data.items() if k != CHECKSUM}, None


def _check_files(folder: Path, integrity: dict) -> Optional[Damage]:
    for rel, want in (integrity.get("files") or {}).items():
        path = folder / rel
        if not path.is_file():
            return Damage(folder, path, "is missing")
        if path.stat().st_size != want.get("bytes"):
            return Damage(folder, path, f"has {path.stat().st_size} bytes, the record says {want.get('bytes')} (torn or edited)")
        if sha256_file(path) != want.get("sha256"):
            return Damage(folder, path, "does not match its SHA-256 checksum (edited or corrupted)")
    return None


def check_generation(folder: Path) -> Optional[Damage]:
    """The first problem of a finished chain generation folder, or None."""
    folder = Path(folder)
    meta, why = try_read_json(folder / META)
    if why:
        return Damage(folder, folder / META, why)
    if meta.get("integrity"):
        return _check_files(folder, meta["integrity"])
    # written before integrity records: check what can be checked
    samples = folder / SAMPLES
    try:
        lines = [ln for ln in samples.read_bytes().decode("utf-8").splitlines() if ln.strip()]
        rows = [json.loads(ln) for ln in lines]
    except FileNotFoundError:
        return Damage(folder, samples, "is missing")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Damage(folder, samples, "has a torn or unreadable line")
    if meta.get("num_samples") is not None and len(rows) != meta["num_samples"]:
        return Damage(folder, samples, f"has {len(rows)} samples, {META} says {meta['num_samples']}")
    if meta.get("generation", 0) >= 1:
        return _missing_adapter(folder)
    return None


def _missing_adapter(folder: Path) -> Optional[Damage]:
    """A folder written before integrity records: its adapter files must at least exist."""
    for name in ADAPTER_FILES:
        if not (folder / "adapter" / name).is_file():
            return Damage(folder, folder / "adapter" / name, "is missing")
    return None


def check_gen0(folder: Path) -> Optional[Damage]:
    """The first problem of a finished generation-0 folder (RUN/gen0/seed<S>), or None."""
    folder = Path(folder)
    meta, why = try_read_json(folder / GEN0_RECORD)
    if why:
        return Damage(folder, folder / GEN0_RECORD, why)
    if meta.get("integrity"):
        damage = _check_files(folder, meta["integrity"])
        if damage:
            return damage
    else:
        damage = _missing_adapter(folder)
        if damage:
            return damage
    for cache in sorted(folder.glob("samples-*.json")):  # generation-0 sample caches, written after the folder
        _, why = read_checked_json(cache)
        if why:
            return Damage(folder, cache, why)
    return None


def scan(run_dir: Path) -> List[Damage]:
    """Every damaged finished folder of a run (unfinished ones, without their record, are not damage)."""
    store = RunStore(run_dir)
    out = [d for d in map(check_gen0, store.finished_gen0_folders()) if d]
    out += [d for d in map(check_generation, store.finished_generation_folders()) if d]
    return out + check_ecosystem_files(run_dir)


def check_ecosystem_files(run_dir: Path) -> List[Damage]:
    """Ecosystem metric files (RUN/ecosystems/<id>/gen_XXX.json) that are unreadable or fail their checksum:
    each is its own 'folder' (repair moves the file; resuming writes it again from the members' samples)."""
    out = []
    for path in sorted((Path(run_dir) / "ecosystems").glob("*/*.json")):
        _, why = read_checked_json(path)
        if why:
            out.append(Damage(path, path, why))
    return out


def verify_folders(run_dir: Path, gen0_folders: List[Path], gen_folders: List[Path]) -> None:
    """:func:`verify` restricted to some finished folders (the chains a job runs)."""
    damages = [d for d in map(check_gen0, dict.fromkeys(f for f in gen0_folders if (f / GEN0_RECORD).exists())) if d]
    damages += [d for d in map(check_generation, (f for f in gen_folders if (f / META).exists())) if d]
    damages += check_ecosystem_files(run_dir)
    if damages:
        raise MadbenchError(explain(run_dir, damages))


def verify_chains(store: RunStore, chains, generations: int) -> None:
    """:func:`verify_folders` for the generation 0 and generations 0..``generations`` of ``chains``."""
    verify_folders(store.root, [store.gen0_dir(c.seed) for c in chains],
                   [store.gen_dir(c.id, g) for c in chains for g in range(generations + 1)])


def explain(run_dir: Path, damages: List[Damage]) -> str:
    first = damages[0]
    more = f" (and {len(damages) - 1} more damaged folder(s))" if len(damages) > 1 else ""
    return (f"{first.file} {first.why}{more}; madbench will not build on a damaged generation: recompute it and "
            f"what depends on it with: madbench run --resume {run_dir} --repair")


def verify(run_dir: Path) -> None:
    """Raise one line naming the first damaged file and the way out, or return."""
    damages = scan(run_dir)
    if damages:
        raise MadbenchError(explain(run_dir, damages))


def _seed_of(chain_id: str) -> Optional[int]:
    match = re.match(r"^[^-]+-[^-]+-s(\d+)(?:-|$)", chain_id)
    return int(match.group(1)) if match else None


def dependents(run_dir: Path, damage: Damage) -> List[Path]:
    """The folders to recompute for one damage: the folder itself and every later one built on it."""
    store = RunStore(run_dir)
    folder = damage.folder
    if folder.is_file():  # an ecosystem metric file: nothing is built on it
        return [folder]
    if store.is_gen0_folder(folder):  # generation 0 of a seed: every chain of that seed starts from it
        seed = store.seed_of_gen0(folder)
        out = [folder]
        for chain_dir in store.chain_folders():
            if _seed_of(chain_dir.name) == seed:
                out += store.generation_folders(chain_dir)
        return out
    return store.generation_folders(folder.parent, start=store.generation_of(folder))


def repair(run_dir: Path, log=print) -> int:
    """Move every damaged folder and its dependents to RUN/damaged/<time>/; return how many were moved."""
    run_dir = Path(run_dir)
    damages = scan(run_dir)
    if not damages:
        return 0
    trash = RunStore(run_dir).damaged_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    moved: Dict[Path, None] = {}
    for damage in damages:
        log(f"madbench: repair: {damage.file} {damage.why}")
        for folder in dependents(run_dir, damage):
            if folder not in moved and folder.exists():
                target = trash / folder.relative_to(run_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(folder, target)
                moved[folder] = None
    log(f"madbench: repair: moved {len(moved)} folder(s) to {trash}; they are recomputed now")
    return len(moved)
