"""Turn a finished run folder into one leaderboard submission file.

    madbench submit runs/default --submitter "Jane Doe" --notes "5 generations, 3 seeds"
    madbench submit runs/smoke --out /tmp/smoke.json
    madbench submit runs/track-tiny-fs --submitter me        # a `madbench run --track tiny-fs` run: its track is declared
    madbench submit runs/shard-345 --merge-with leaderboard/submissions/A.json   # add this run's seeds to A's (merge.py)

The file (leaderboard/submissions/<run>-<model>-<hash>.json by default) holds the
who/what, the full config, the environment, every chain's per-generation metrics,
the summary scores and a content hash; schema: madbench/schemas/submission.schema.json.
It prints what to do next: ``madbench leaderboard validate FILE``, how to look at the built site, and
where the pull request goes (the repository's CI, .github/workflows/leaderboard.yml, validates it there).
"""

from __future__ import annotations

from pathlib import Path

from madbench.errors import MadbenchError
from madbench.leaderboard import bundle
from madbench.leaderboard import validate

DEFAULT_DIR = Path("leaderboard/submissions")


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with results.json (made by madbench run)")
    parser.add_argument("--out", metavar="PATH", help=f"file or folder to write (default: {DEFAULT_DIR}/)")
    parser.add_argument("--submitter", default="", help="your name or team, shown on the leaderboard")
    parser.add_argument("--notes", default="", help="free text shown on the submission's page")
    parser.add_argument("--track", help="the track the run follows (default: NAME for a run made by madbench run --track NAME; "
                        "'open' for none)")
    parser.add_argument("--plugin-url", metavar="URL",
                        help="where to get the plug-ins the run used (an http(s) address; default: the installed "
                        "distribution's project URL): recorded in the submission so it validates without them")
    parser.add_argument("--plugin-version", metavar="VERSION",
                        help="the plug-ins' version (default: the installed distribution's, 'unversioned' for a file)")
    parser.add_argument("--merge-with", metavar="SUBMISSION", action="append", default=[],
                        help="an earlier submission of the same config but other seeds (a track's seeds run on several "
                        "machines; repeat for more parts): write one submission holding every part's chains "
                        "(madbench/leaderboard/merge.py)")
    parser.add_argument("--seeds", metavar="S,S,...", type=_seed_list,
                        help="submit only these seeds, whose chains all finished (a part of a stopped run, to merge "
                        "later with --merge-with)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="submit a run whose chains did not reach the last generation (marked incomplete)")


def main(args) -> int:
    from madbench.results.collect import load_results

    from madbench.results.integrity import verify

    if Path(args.run_dir).is_dir():
        verify(Path(args.run_dir))  # never submit numbers a damaged folder may no longer back
    _load_run_plugins(Path(args.run_dir))
    results = load_results(Path(args.run_dir))
    from madbench.leaderboard import merge

    if getattr(args, "seeds", None):
        results = merge.select_seeds(results, args.seeds)
    if not results["complete"] and not args.allow_incomplete:
        raise MadbenchError(f"{args.run_dir} is not complete; finish it with madbench run --resume {args.run_dir} "
                            "or pass --allow-incomplete")
    from madbench.leaderboard import external

    earlier = []
    for path in getattr(args, "merge_with", None) or []:
        earlier.append(merge.load_earlier(Path(path)))
        results = merge.merge_results(results, earlier[-1], Path(path))
    _refuse_shard(args, results)
    draft = bundle.build_submission(results, track=_track(args, results))
    plugins = external.declarations(Path(args.run_dir), draft, getattr(args, "plugin_url", None),
                                    getattr(args, "plugin_version", None))
    for path, other in zip(getattr(args, "merge_with", None) or [], earlier):
        if sorted(map(str, other.get("plugins") or [])) != sorted(map(str, plugins or [])):
            raise MadbenchError(f"--merge-with {path}: its plug-in declarations differ from this run's; "
                                "merge runs made with the same plug-ins")
    data = bundle.build_submission(results, submitter=args.submitter, notes=args.notes, track=_track(args, results),
                                   plugins=plugins)
    out = Path(args.out) if args.out else DEFAULT_DIR
    if out.is_dir() or not out.suffix:
        out = out / bundle.file_name(data)
    try:  # a run madbench itself cannot submit is a bug, but say so plainly and write nothing
        validate.check_data(data)
    except bundle.Invalid as exc:
        raise MadbenchError(f"the submission for {args.run_dir} does not validate: {exc}")
    bundle.write_submission(data, out)  # (a track run whose protocol differs was refused above, keys listed)
    size = out.stat().st_size
    if size > bundle.MAX_BYTES:
        out.unlink()
        raise MadbenchError(f"the submission would be {size} bytes, over the {bundle.MAX_BYTES}-byte limit; submit fewer chains")
    print(f"madbench: wrote {out} ({size} bytes, {data['content_hash'][:19]}...)")
    print(next_steps(out, data))
    return 0


def next_steps(out: Path, data: dict) -> str:
    """What to do with the file: check it, look at it, and where the pull request goes."""
    repo = repository_url()
    where = (f"{repo} (fork it, add the file, open a pull request against main)" if repo else
             "the madbench repository you got madbench from (its package records no URL)")
    shown = DEFAULT_DIR / out.name
    ranked = f"it is ranked in track {data['track']}" if data.get("track") else "it is listed as an open submission"
    return "\n".join([
        "next:",
        f"  1. check it:  madbench leaderboard validate {out}",
        f"  2. see it:    madbench leaderboard build --out /tmp/madbench-site, then open /tmp/madbench-site/index.html "
        f"({ranked})",
        f"  3. submit it: add it as {shown} in a checkout of {where};",
        "                CI (.github/workflows/leaderboard.yml) validates every submission and builds the site on the pull request",
    ])


def repository_url() -> str | None:
    """madbench's repository: the package's Project-URL (Repository/Source/Homepage), else the checkout's git origin."""
    import subprocess
    from importlib import metadata

    try:
        urls = dict(u.split(",", 1) for u in metadata.metadata("madbench").get_all("Project-URL") or [] if "," in u)
        found = next((urls[k].strip() for k in urls if k.strip().lower() in ("repository", "source", "homepage")), None)
        if found:
            return found
    except metadata.PackageNotFoundError:
        pass
    try:
        proc = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "remote", "get-url", "origin"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    url = proc.stdout.strip()
    return url if proc.returncode == 0 and url else None


def _load_run_plugins(run_dir: Path) -> None:
    """The plug-ins the run was made with (config.json's ``plugins``), as ``--resume`` loads them: their declarations
    need their code's hash and their target metric."""
    from madbench.results import fileio

    try:
        saved = fileio.read_json(run_dir / "config.json")
    except (OSError, ValueError):
        return
    if saved.get("plugins"):
        from madbench.plugins import load_named

        load_named(saved["plugins"], f"run folder {run_dir}")


def _seed_list(text: str) -> list:
    import argparse

    try:
        seeds = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of seeds, e.g. 3,4")
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. --seeds 3")
    return seeds


def _refuse_shard(args, results) -> None:
    """A run of some of a track's seeds is submitted merged with the rest (--merge-with, repeated for more parts),
    never alone: it would not validate as the track's. ``--track open`` submits a part as an open submission."""
    from madbench.config.tracks import TRACKS, is_shard

    name = _track(args, results)
    if name and is_shard(results["config"], TRACKS.get(name)):
        raise MadbenchError(f"{args.run_dir} holds seeds {results['config']['loop']['seeds']} of track {name}'s "
                            f"{TRACKS.get(name).config().loop.seeds}: add the other seeds' submission with "
                            "--merge-with SUBMISSION (or submit it with --track open)")


def _track(args, results) -> str | None:
    """The declared track: --track, else the one `madbench run --track NAME` named the run after, else open."""
    from madbench.config.tracks import TRACKS

    if getattr(args, "track", None):
        if args.track == "open":
            return None
        TRACKS.get(args.track)  # unknown: one line with a did-you-mean
        return args.track
    name = str(results["config"].get("name", ""))
    return name[len("track-"):] if name.startswith("track-") and name[len("track-"):] in TRACKS else None
