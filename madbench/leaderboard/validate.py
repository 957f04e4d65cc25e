"""Check leaderboard submissions: schema, size, hash, known names, consistency, duplicates.

    madbench leaderboard validate                      # every file in leaderboard/submissions/
    madbench leaderboard validate a.json b.json

Submissions are untrusted input: they are only parsed as JSON (size-capped) and
compared against what madbench itself would compute from their per-generation data.
Each problem is one :class:`~madbench.leaderboard.bundle.Invalid` (a field and a message).

What a valid submission guarantees:
  * it is plain JSON under the size cap that matches the submission schema (never executed);
  * it was not corrupted or edited after its ``content_hash`` was computed (a checksum:
    accidental damage and careless edits are caught);
  * its regimes, mitigations and metrics are names madbench knows, or plug-ins it declares (distribution,
    version, url, sha256 of the code: :mod:`madbench.leaderboard.external`; no plug-in is imported),
    its generations start at 0 and increase, its numbers are finite;
  * its summary block and every summary score equal what madbench recomputes from its own
    per-generation metrics and config, so the leaderboard's columns follow from the curves;
  * it is not a duplicate (same content hash, or same run) of an earlier file.

What it does not guarantee: that the per-generation metrics came from running madbench.
Anyone can edit them, or invent them, and recompute ``content_hash`` and the scores: the
hash is not a signature and nothing is re-run. Trust in the numbers themselves comes from
reproducing the run (its full config and environment are in the file) or from who submitted it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from madbench.leaderboard import bundle
from madbench.leaderboard import scores as scores_mod
from madbench.leaderboard.bundle import Invalid

# A metric beyond this magnitude is not a measurement, and no chart or score can draw it honestly
# (perplexity of an untrained 50k-vocabulary model is about 5e4).
MAX_MAGNITUDE = 1e12
# Relative scores divide by generation 0: a non-zero value below this magnitude would turn a change of a
# fraction into a degradation of 1e290 % (whose statistics overflow); no metric madbench computes is that small.
MIN_MAGNITUDE = 1e-12


@dataclass
class Checked:
    path: Path
    data: Optional[dict] = None
    error: Optional[Invalid] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.ok:
            groups = len(self.data["scores"]["groups"])
            return f"ok   {self.path} ({self.data['summary']['model']}, {groups} group{'s' * (groups != 1)})"
        return f"FAIL {self.path}: {self.error}"


def check_schema(data: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(bundle.schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        raise Invalid("/".join(map(str, err.path)) or "(top level)", err.message[:200])
    check_config_bounds(data)


def check_config_bounds(data: dict) -> None:
    """A submission's config is bounded like a run's (config/limits.py): monitor --score sizes arrays by generations."""
    from madbench.config import limits

    loop = (data.get("config") or {}).get("loop") if isinstance(data.get("config"), dict) else None
    value = loop.get("generations", 0) if isinstance(loop, dict) else 0
    bound = limits.bounds()["loop.generations"]
    if type(value) is not int or not 0 <= value <= bound:
        raise Invalid("config/loop/generations", f"{str(value)[:40]} is not a generation count of 0 to {bound} (loop.generations in config/limits.py)")


def check_hash(data: dict) -> None:
    try:
        actual = bundle.content_hash(data)
    except ValueError as exc:  # NaN or Infinity smuggled past the loader
        raise Invalid("(top level)", f"not canonical JSON ({exc})")
    if data["content_hash"] != actual:
        raise Invalid("content_hash", f"does not match the content (recomputed {actual[:19]}...): the file was corrupted or edited after madbench submit")


def check_names(data: dict) -> None:
    from madbench.metrics import METRICS
    from madbench.mitigations import MITIGATIONS
    from madbench.loop.regimes import REGIMES

    from madbench.config.limits import hidden_characters

    from madbench.leaderboard.external import declared as plugin_names

    declared = set(data["metrics_info"]) | set(plugin_names(data, "metric"))
    own = {kind: plugin_names(data, kind) for kind in ("mitigation", "regime")}
    for field, text in [("run/name", data["run"]["name"]), ("submitter", data["submitter"]),
                        *((f"chains/{i}/id", c["id"]) for i, c in enumerate(data["chains"]))]:
        if hidden_characters(str(text)):
            raise Invalid(field, f"{ascii(str(text)[:80])} holds bidi-override or zero-width characters (it would read "
                                 "as another name); use plain text")
    for i, chain in enumerate(data["chains"]):
        if chain["regime"] not in REGIMES and chain["regime"] not in own["regime"]:
            raise Invalid(f"chains/{i}/regime", f"unknown regime '{chain['regime']}' (a plug-in's must be declared under "
                                                f"plugins); known: {', '.join(REGIMES.names())}")
        for j, name in enumerate(chain["mitigations"]):
            if name not in MITIGATIONS and name not in own["mitigation"]:
                raise Invalid(f"chains/{i}/mitigations/{j}", f"unknown mitigation '{name}' (a plug-in's must be declared "
                                                             f"under plugins); known: {', '.join(MITIGATIONS.names())}")
        seen = []
        for j, gen in enumerate(chain["generations"]):
            seen.append(gen["generation"])
            for key, value in gen["metrics"].items():
                if key not in METRICS and key not in declared:
                    raise Invalid(f"chains/{i}/generations/{j}/metrics/{key}", "unknown metric: neither registered nor declared in metrics_info")
                if isinstance(value, float) and not math.isfinite(value):
                    raise Invalid(f"chains/{i}/generations/{j}/metrics/{key}", "not a finite number")
                if isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE:
                    raise Invalid(f"chains/{i}/generations/{j}/metrics/{key}",
                                  f"{value!r} has a magnitude over {MAX_MAGNITUDE:g}: not a metric value a chart can draw")
                if isinstance(value, (int, float)) and value and abs(value) < MIN_MAGNITUDE:
                    raise Invalid(f"chains/{i}/generations/{j}/metrics/{key}",
                                  f"{value!r} is non-zero with a magnitude under {MIN_MAGNITUDE:g}: relative scores divide "
                                  "by it; write 0 or the measured value")
            for key, (low, high) in (gen.get("intervals") or {}).items():
                if key not in gen["metrics"] or not (math.isfinite(low) and math.isfinite(high) and low <= high):
                    raise Invalid(f"chains/{i}/generations/{j}/intervals/{key}",
                                  "an interval needs a metric of this generation and finite bounds low <= high")
        if seen != sorted(set(seen)) or seen[0] != 0:
            raise Invalid(f"chains/{i}/generations", f"generations must start at 0 and increase, got {seen[:10]}")
    ids = [c["id"] for c in data["chains"]]
    if len(ids) != len(set(ids)):
        raise Invalid("chains", "two chains share an id")


def check_track(data: dict) -> None:
    """A submission that declares a track must follow its protocol exactly and carry the baseline beside its mitigations."""
    if "track" not in data:
        return  # open
    from madbench.registry import did_you_mean
    from madbench.config.tracks import TRACKS, chain_diff, protocol_diff

    name = data["track"]
    if name not in TRACKS:
        raise Invalid("track", f"unknown track '{name}';{did_you_mean(name, TRACKS.names())} known: {', '.join(TRACKS.names())}")
    changed = protocol_diff(data["config"], TRACKS.get(name))
    if changed:
        raise Invalid("config", f"differs from track {name}'s protocol at: {', '.join(changed[:12])}" + (" ..." if len(changed) > 12 else ""))
    if not any(not c["mitigations"] for c in data["chains"]) or all(not c["mitigations"] for c in data["chains"]):
        raise Invalid("chains", f"a track {name} submission needs the unmitigated baseline and at least one mitigation")
    wrong = chain_diff(data, TRACKS.get(name))
    if wrong:
        raise Invalid("chains", f"do not follow track {name}'s protocol: {'; '.join(wrong)}")
    for i, chain in enumerate(data["chains"]):
        for j, gen in enumerate(chain["generations"]):
            if gen["generation"] >= 1 and not isinstance(gen.get("synthetic_fraction"), (int, float)):
                raise Invalid(f"chains/{i}/generations/{j}/synthetic_fraction",
                              "missing: a track ranks the human data each mitigation adds, so every generation records it")
            metrics = gen.get("metrics") if isinstance(gen.get("metrics"), dict) else {}
            for metric in data["metrics_info"]:  # complete or refused: a nulled seed would drop out of the ranking (B2)
                value = metrics.get(metric)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise Invalid(f"chains/{i}/generations/{j}/metrics/{metric}",
                                  f"{'missing' if metric not in metrics else 'null' if value is None else 'not a number'}: "
                                  "a track submission has every declared metric for every seed and generation")


def check_consistency(data: dict) -> None:
    """The summary block and every stored score must equal what madbench recomputes from the chains."""
    derived = bundle.summary(data["config"], data["chains"])
    for key, value in derived.items():
        if data["summary"].get(key) != value:
            raise Invalid(f"summary/{key}", f"{str(data['summary'].get(key))[:80]!r} does not match config/chains ({str(value)[:80]!r})")
    if data["scores"]["version"] != scores_mod.SCORES_VERSION or data["scores"]["degrade_pct"] != scores_mod.DEGRADE_PCT:
        raise Invalid("scores/version", f"made by another scores version; re-run madbench submit (expected version {scores_mod.SCORES_VERSION})")
    computed = scores_mod.group_scores(data["chains"], data["metrics_info"])
    stored = data["scores"]["groups"]
    if [g["label"] for g in stored] != [g["label"] for g in computed]:
        raise Invalid("scores/groups", "the groups do not match the chains (regime/mode/mitigations)")
    for i, (s, c) in enumerate(zip(stored, computed)):
        for key in ("regime", "mode", "mitigations", "seeds", "last_generation"):
            if s[key] != c[key]:
                raise Invalid(f"scores/groups/{i}/{key}", f"{s[key]!r} does not match the chains ({c[key]!r})")
        for name in scores_mod.SCORE_NAMES:
            have = s["scores"].get(name)
            if have is None:
                raise Invalid(f"scores/groups/{i}/scores/{name}", "missing")
            for stat, value in c["scores"][name].items():
                if scores_mod.differs(have.get(stat), value):
                    raise Invalid(f"scores/groups/{i}/scores/{name}/{stat}",
                                  f"stored {have.get(stat)!r} but the per-generation data gives {value!r}")


def check_renders(data: dict) -> None:
    """The last guard of "whatever validates builds": render the submission's page and track rows as build will."""
    from madbench.leaderboard import site, tracks_view

    try:
        site.render_submission(data)
        site.render_index([data])
        if "track" in data:
            tracks_view.track_rows([data], data["track"])
        if "protocol" in data:
            from madbench.leaderboard import protocols_view

            protocols_view.render_page([data], data["protocol"]["protocol"], site.page_id)
    except Exception as exc:  # noqa: BLE001 (a file the site cannot draw is refused here, not in the build)
        raise Invalid("(top level)", f"the site cannot render it ({type(exc).__name__}: {str(exc)[:120]}); "
                      "please report this with the file")


def check_data(data: dict, track: bool = True) -> None:
    """Every check of a parsed submission, in order; raises the first :class:`Invalid`. ``track=False`` skips the
    track's protocol (a part merged into a track submission holds some of its seeds: madbench/leaderboard/merge.py)."""
    check_schema(data)
    check_hash(data)
    from madbench.leaderboard import external

    external.check(data)
    check_names(data)
    if track:
        check_track(data)
    from madbench.leaderboard import protocols_view

    protocols_view.check(data)
    check_consistency(data)
    check_renders(data)


def check_file(path: Path, max_bytes: int = bundle.MAX_BYTES) -> Checked:
    """Load and check one file; never raises for a bad submission."""
    try:
        data = bundle.load_untrusted(path, max_bytes)
        check_data(data)
    except Invalid as exc:
        return Checked(Path(path), error=exc)
    return Checked(Path(path), data=data)


def check_many(paths, max_bytes: int = bundle.MAX_BYTES) -> list[Checked]:
    """Check every file; of two files with the same content hash or the same run, the one submitted later (by the
    repository's history, then the recorded ``created`` time, then the file name) is the duplicate."""
    out = [check_file(path, max_bytes) for path in paths]
    added = _git_added([c.path for c in out if c.ok])
    hashes, runs = {}, {}
    for item in sorted((c for c in out if c.ok), key=lambda c: _submitted(c, added)):
        digest, run = item.data["content_hash"], bundle.run_fingerprint(item.data)
        earlier = hashes.get(digest) or runs.get(run)
        if earlier is not None:
            what = "duplicate of" if digest in hashes else "the same run (config and metrics) as"
            item.error = Invalid("content_hash" if digest in hashes else "chains",
                                 f"{what} {earlier.path}, submitted earlier ({_when(earlier, added)}; this file: "
                                 f"{_when(item, added)}); the earlier submission keeps its place")
        else:
            hashes[digest], runs[run] = item, item
    return out


def _submitted(item: Checked, added: dict) -> tuple:
    """Sort key: first commit time in git (a file not committed yet is the newest), then ``created``, then the name."""
    return (added.get(Path(item.path).resolve(), float("inf")), str(item.data.get("created", "")), str(item.path))


def _when(item: Checked, added: dict) -> str:
    at = added.get(Path(item.path).resolve())
    import datetime

    git = (f"committed {datetime.datetime.fromtimestamp(at, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
           if at is not None else "not committed")
    return f"{git}, created {item.data.get('created', '?')}"


def _git_added(paths) -> dict:
    """{resolved path: unix time of the commit that added it} from one ``git log`` per folder; {} outside git."""
    import subprocess

    found: dict = {}
    for folder in sorted({Path(p).resolve().parent for p in paths}):
        try:
            top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                                 text=True, timeout=30)
            if top.returncode:
                continue
            log = subprocess.run(["git", "-C", str(folder), "log", "--diff-filter=A", "--format=@%ct", "--name-only",
                                  "--", "."], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        root, when = Path(top.stdout.strip()), None
        for line in log.stdout.splitlines():
            if line.startswith("@"):
                when = int(line[1:])
            elif line.strip() and when is not None:
                found[(root / line.strip()).resolve()] = when  # git log is newest first: the oldest stays
    return found


def submission_files(folder: Path) -> list[Path]:
    """The *.json files of a submissions folder, sorted (no recursion, no symlinks)."""
    folder = Path(folder)
    return sorted(p for p in folder.glob("*.json") if p.is_file() and not p.is_symlink())
