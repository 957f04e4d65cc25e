"""``madbench leaderboard validate|build``: check submissions and render the static site.

    madbench leaderboard validate                       # every file in leaderboard/submissions/
    madbench leaderboard validate path/to/a.json b.json
    madbench leaderboard build                          # -> leaderboard/site/index.html
    madbench leaderboard build --out /tmp/site --submissions my/dir

validate prints one line per file (``ok`` or ``FAIL file: field 'x': why``) and exits 1
if any file fails. build skips an invalid file with one warning line and builds the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from madbench.errors import MadbenchError
from madbench.leaderboard import bundle
from madbench.leaderboard import validate

DEFAULT_SUBMISSIONS = Path("leaderboard/submissions")
DEFAULT_SITE = Path("leaderboard/site")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION")
    v = sub.add_parser("validate", help="check submission files (schema, size, hash, names, scores, duplicates)")
    v.add_argument("paths", nargs="*", metavar="PATH",
                   help=f"submission files or folders (default: every *.json in {DEFAULT_SUBMISSIONS}/)")
    v.add_argument("--max-bytes", type=int, default=bundle.MAX_BYTES, help="size limit of one file (default: 2 MiB)")
    b = sub.add_parser("build", help="render the static site from the valid submissions")
    b.add_argument("--out", default=str(DEFAULT_SITE), metavar="DIR", help=f"output folder, replaced (default: {DEFAULT_SITE})")
    b.add_argument("--submissions", default=str(DEFAULT_SUBMISSIONS), metavar="DIR",
                   help=f"folder of submission files (default: {DEFAULT_SUBMISSIONS})")
    b.add_argument("--max-bytes", type=int, default=bundle.MAX_BYTES, help="size limit of one file (default: 2 MiB)")


def _expand(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(validate.submission_files(p))
        elif p.exists():
            out.append(p)
        else:
            raise MadbenchError(f"{p} does not exist; give submission files or a folder of them")
    return out


def main(args) -> int:
    action = getattr(args, "leaderboard_command", None)
    if action == "validate":
        files = _expand(args.paths or [DEFAULT_SUBMISSIONS])
        if not files:
            raise MadbenchError(f"no submission files in {', '.join(map(str, args.paths or [DEFAULT_SUBMISSIONS]))}")
        checked = validate.check_many(files, args.max_bytes)
        for item in checked:
            print(item.line(), file=sys.stdout if item.ok else sys.stderr)
        bad = sum(not c.ok for c in checked)
        print(f"madbench: {len(checked) - bad} valid, {bad} invalid submission(s)")
        return 1 if bad else 0
    if action == "build":
        from madbench.leaderboard import site

        folder = Path(args.submissions)
        if not folder.is_dir():
            raise MadbenchError(f"{folder} is not a folder; pass --submissions DIR (made by madbench submit)")
        checked = validate.check_many(validate.submission_files(folder), args.max_bytes)
        for item in checked:
            if not item.ok:
                print(f"madbench: warning: skipping {item.path}: {item.error}", file=sys.stderr)
        good = [c.data for c in checked if c.ok]
        index = site.build(good, Path(args.out))
        print(f"madbench: built {index} from {len(good)} submission(s), {len(checked) - len(good)} skipped")
        return 0
    raise MadbenchError("choose an action: madbench leaderboard validate [PATHS...] | build [--out DIR]")
