"""Submission bundles: build one from results.json, hash it, and load one safely.

    from madbench.leaderboard.bundle import build_submission, load_untrusted
    sub = build_submission(results, submitter="me", notes="")     # content_hash included
    data = load_untrusted(Path("leaderboard/submissions/x.json"))  # raises Invalid(field, message)

A submission is plain JSON (never pickle, never executed). ``content_hash`` is
``sha256:`` + the SHA-256 of the canonical JSON of everything else (keys sorted,
no whitespace, UTF-8, no NaN). It is a checksum, not a signature: it catches accidental
corruption and edits that did not recompute it, but anyone can edit a file and recompute
the hash. What ``madbench leaderboard validate`` guarantees, and what it does not, is
stated in :mod:`madbench.leaderboard.validate`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from importlib import resources
from pathlib import Path

from madbench.results import fileio, untrusted
from madbench.leaderboard import scores as scores_mod

FORMAT = "madbench-submission"
SUBMISSION_VERSION = "1.0"
MAX_BYTES = 2 * 1024 * 1024  # a submission larger than this is rejected unread
MAX_STRING = 100_000  # characters of one string (notes, names); the schema bounds each field further


class Invalid(Exception):
    """A submission problem: ``field`` (a JSON path like 'chains/0/regime', or '(file)') and a one-line message."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field '{field}': {message}")
        self.field, self.message = field, message


def schema() -> dict:
    return json.loads(resources.files("madbench").joinpath("schemas/submission.schema.json").read_text())


def canonical(data: dict) -> bytes:
    body = {k: v for k, v in data.items() if k != "content_hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def content_hash(data: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical(data)).hexdigest()


def run_fingerprint(data: dict) -> str:
    """Identity of the run behind a submission (config + per-generation metrics): two files of one run share it."""
    chains = [{"id": c.get("id"), "seed": c.get("seed"),
               "metrics": [g.get("metrics") for g in c.get("generations") or []]} for c in data.get("chains") or []]
    blob = json.dumps({"config": data.get("config"), "chains": chains}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def summary(config: dict, chains: list[dict]) -> dict:
    """The who/what block, derived from the config and the chains (validate re-derives and compares it)."""
    regimes, mitigations = [], []
    for chain in chains:
        label = f"{chain['regime']}/{chain['mode']}"
        if label not in regimes:
            regimes.append(label)
        if list(chain.get("mitigations") or []) not in mitigations:
            mitigations.append(list(chain.get("mitigations") or []))
    gens = [int(g["generation"]) for c in chains for g in c.get("generations") or []]
    return {
        "model": str((config.get("model") or {}).get("name", "")),
        "corpus": str((config.get("data") or {}).get("corpus", "")),
        "regimes": regimes,
        "mitigations": mitigations,
        "seeds": sorted({int(c["seed"]) for c in chains}),
        "generations": max(gens, default=0),
        "sampling": dict(config.get("sampling") or {}),
    }


def build_submission(results: dict, submitter: str = "", notes: str = "", track: str | None = None,
                     plugins: list | None = None) -> dict:
    """A complete submission dict (with content_hash) from a validated results.json dict (``track``: its track, or open;
    ``plugins``: the declarations of the plug-ins it used, see :mod:`madbench.leaderboard.external`)."""
    chains = [c for c in results["chains"] if c.get("generations")]  # an unstarted chain has nothing to show
    data = {
        "format": FORMAT,
        "submission_version": SUBMISSION_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "submitter": submitter,
        "notes": notes,
        "run": {"name": results.get("run_name") or results["config"].get("name", ""),
                "config_hash": results["config_hash"], "results_schema_version": results["schema_version"],
                "complete": bool(results["complete"]), "wall_seconds": results.get("wall_seconds")},
        "summary": summary(results["config"], chains),
        "config": results["config"],
        "environment": results["environment"],
        "metrics_info": results["metrics_info"],
        "chains": chains,
        "scores": scores_mod.scores_block(chains, results["metrics_info"]),
    }
    if track:
        data["track"] = track
    if plugins:
        data["plugins"] = plugins
    if results.get("protocol"):  # a published protocol's preset: validate recomputes its deviations from config
        data["protocol"] = results["protocol"]
    data["content_hash"] = content_hash(data)
    return data


def file_name(data: dict) -> str:
    """A safe file name: run name, model and the start of the content hash (only [a-z0-9._-])."""
    stem = f"{data['run']['name']}-{data['summary']['model']}"
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.")[:60] or "submission"
    return f"{stem}-{data['content_hash'][7:19]}.json"


def write_submission(data: dict, path: Path) -> Path:
    fileio.write_json(path, data)
    return path


def load_untrusted(path: Path, max_bytes: int = MAX_BYTES) -> dict:
    """Read a submission without trusting it (madbench/results/untrusted.py: size, depth, string and numeric bounds,
    NaN/Infinity, 10**400 and duplicate keys refused, naming the field); an object at the top."""
    try:
        data = untrusted.read(Path(path), max_bytes=max_bytes, max_string=MAX_STRING)
    except untrusted.UntrustedJSON as exc:
        raise Invalid(exc.field, exc.message) from None
    if not isinstance(data, dict):
        raise Invalid("(top level)", "must be a JSON object")
    return data
