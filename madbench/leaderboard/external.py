"""Plug-in results as data: a submission declares the plug-ins it used, and validates without them.

    madbench submit runs/mine --plugin-url https://github.com/me/rep-filter    # declares the run's plug-ins
    MADBENCH_DISABLE_PLUGIN_AUTOLOAD=1 madbench leaderboard validate FILE      # passes on a machine without them

A run made with a plug-in (``--plugin FILE``, ``plugins:`` or an installed entry point) records in its
config.json where each non-built-in name came from (``plugin_origins``) and each plug-in file's sha256
(``plugin_sha256``). ``madbench submit`` turns that into the submission's ``plugins`` list, one
declaration per mitigation, regime or metric the run used that madbench does not ship::

    {"kind": "mitigation", "name": "rep_filter", "distribution": "rep-filter", "version": "0.1.0",
     "url": "https://...", "sha256": "<64 hex: the code's hash>", "target_metric": "distinct_2"}

``validate`` accepts a name it does not know when the submission declares it, and checks each
declaration (one line naming the field); the site marks such a mitigation "external" and shows the
declaration. The hash lets anyone check that the code they install is the code that ran; like the
content hash it is a checksum, not a signature.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, Optional

from madbench.leaderboard.bundle import Invalid

KINDS = {"mitigations": "mitigation", "regimes": "regime", "metrics": "metric"}  # registry kind -> declared kind
FIELDS = ("kind", "name", "distribution", "version", "url", "sha256")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
URL = re.compile(r"^https?://[^\s]{1,300}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def _registry(kind: str):
    from madbench.plugins import registry

    return registry({v: k for k, v in KINDS.items()}[kind])


def declared(data: dict, kind: str) -> Dict[str, dict]:
    """{name: declaration} of one kind ('mitigation', 'regime', 'metric') in a submission."""
    return {p["name"]: p for p in data.get("plugins") or [] if isinstance(p, dict) and p.get("kind") == kind
            and isinstance(p.get("name"), str)}


def is_external(data: dict, mitigations) -> bool:
    names = declared(data, "mitigation")
    return any(m in names for m in mitigations)


def check(data: dict) -> None:
    """Each declaration complete and well-formed, declaring no built-in name, each name once."""
    from madbench.registry import BUILTIN

    seen = set()
    for i, p in enumerate(data.get("plugins") or []):
        where = f"plugins/{i}"
        if not isinstance(p, dict):
            raise Invalid(where, "must be an object with " + ", ".join(FIELDS))
        for key in FIELDS:
            if not isinstance(p.get(key), str) or not p[key].strip():
                raise Invalid(f"{where}/{key}", "missing: a plug-in declaration needs " + ", ".join(FIELDS))
        if p["kind"] not in KINDS.values():
            raise Invalid(f"{where}/kind", f"'{p['kind'][:40]}' is not one of {', '.join(KINDS.values())}")
        for key in ("name", "distribution", "version"):
            if not NAME.match(p[key]):
                raise Invalid(f"{where}/{key}", f"{ascii(p[key][:60])} must be 1-100 letters, digits or ._+-")
        if not URL.match(p["url"]):
            raise Invalid(f"{where}/url", f"{ascii(p['url'][:60])} must be an http(s) address where the plug-in can be got")
        if not HEX64.match(p["sha256"]):
            raise Invalid(f"{where}/sha256", "must be the 64 lower-case hex digits of the plug-in code's sha256")
        if p["kind"] == "mitigation" and not isinstance(p.get("target_metric"), str):
            raise Invalid(f"{where}/target_metric", "missing: a mitigation declares the metric it improves")
        reg = _registry(p["kind"])
        if p["name"] in reg and reg.origin(p["name"]) == BUILTIN:
            raise Invalid(f"{where}/name", f"'{p['name']}' is madbench's own {p['kind']}; declare only plug-ins")
        if (p["kind"], p["name"]) in seen:
            raise Invalid(f"{where}/name", f"'{p['name']}' is declared twice")
        seen.add((p["kind"], p["name"]))


def declarations(run_dir: Path, data: dict, url: Optional[str] = None, version: Optional[str] = None) -> List[dict]:
    """The ``plugins`` list of a submission made from ``run_dir`` (its config.json's plug-in record): one entry per
    non-built-in mitigation, regime or metric the submission uses. Raises MadbenchError naming what is missing."""
    from madbench.errors import MadbenchError
    from madbench.results import fileio

    try:
        saved = fileio.read_json(Path(run_dir) / "config.json")
    except (OSError, ValueError):
        saved = {}
    origins, digests = saved.get("plugin_origins") or {}, saved.get("plugin_sha256") or {}
    used = {"mitigation": {m for c in data["chains"] for m in c["mitigations"]},
            "regime": {c["regime"] for c in data["chains"]},
            "metric": {k for c in data["chains"] for g in c["generations"] for k in g["metrics"]}}
    out = []
    for reg_kind, kind in KINDS.items():
        for name, origin in sorted((origins.get(reg_kind) or {}).items()):
            if name not in used[kind]:
                continue
            dist, ver, where, digest = _source(origin, digests)
            where = url or where
            if not where:
                raise MadbenchError(f"the run used the plug-in {kind} '{name}' ({origin}); say where to get it: "
                                    "madbench submit ... --plugin-url https://...")
            if digest is None:
                raise MadbenchError(f"cannot hash the code of the plug-in {kind} '{name}' ({origin}): is it still installed?")
            entry = {"kind": kind, "name": name, "distribution": dist, "version": version or ver, "url": where,
                     "sha256": digest}
            if kind == "mitigation":
                entry["target_metric"] = _target(name)
            out.append(entry)
    return out


def _target(name: str) -> str:
    from madbench.errors import MadbenchError
    from madbench.mitigations import MITIGATIONS

    if name not in MITIGATIONS:
        raise MadbenchError(f"the plug-in mitigation '{name}' is not loaded, so its target_metric is unknown; "
                            "load it with madbench --plugin FILE submit ...")
    return MITIGATIONS.get(name).target_metric


def _source(origin: str, digests: Dict[str, str]):
    """(distribution, version, url or None, sha256 or None) of a plug-in from its recorded origin."""
    if origin.startswith("entry point "):
        dist, _, ver = origin[len("entry point "):].partition(" ")
        return _safe(dist), _safe(ver or "unknown"), _dist_url(dist), _dist_digest(dist)
    if origin.startswith("file "):
        path = Path(origin[len("file "):])
        spec = str(path.parent if path.name == "__init__.py" else path)
        from madbench.plugins import file_digest

        digest = digests.get(spec) or file_digest(spec)
        stem = Path(spec).stem if Path(spec).suffix == ".py" else Path(spec).name
        return _safe(stem), "unversioned", None, digest
    module = origin[len("module "):] if origin.startswith("module ") else origin
    return _safe(module), "unversioned", None, _module_digest(module)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")[:100] or "unknown"


def _dist_url(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        meta = metadata.metadata(dist)
    except metadata.PackageNotFoundError:
        return None
    found = [v.split(",", 1)[-1].strip() for v in meta.get_all("Project-URL") or []] + [meta.get("Home-page") or ""]
    return next((u for u in found if URL.match(u)), None)


def _dist_digest(dist: str) -> Optional[str]:
    """sha256 over a distribution's installed .py files (by relative path, sorted)."""
    from importlib import metadata

    try:
        files = sorted(str(f) for f in metadata.distribution(dist).files or [] if str(f).endswith(".py"))
        located = [(f, metadata.distribution(dist).locate_file(f)) for f in files]
    except metadata.PackageNotFoundError:
        return None
    h = hashlib.sha256()
    for rel, path in located:
        try:
            h.update(rel.encode() + b"\0" + Path(path).read_bytes() + b"\0")
        except OSError:
            return None
    return h.hexdigest() if located else None


def _module_digest(module: str) -> Optional[str]:
    import importlib.util

    from madbench.plugins import file_digest

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin)
    return file_digest(str(path.parent if path.name == "__init__.py" else path))
