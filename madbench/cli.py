"""The ``madbench`` command line: a few verbs, each in its own module.

    madbench run [--preset NAME] [--config FILE] [--output-dir DIR] [key=value ...]
    madbench run --resume DIR
    madbench list

Every user error prints one line ``madbench: error: ...`` and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import MadbenchError

# verb -> (module, one-line help). Each module has add_arguments(parser) and main(args) -> int.
COMMANDS = {
    "run": ("madbench.run", "run the recursive fine-tuning loop (default experiment with no arguments)"),
    "list": ("madbench.listing", "list registered regimes, mitigations, metrics, presets, corpora and models"),
    "report": ("madbench.report", "plot every metric against generation and write a summary for a run folder"),
    "submit": ("madbench.leaderboard.submit", "turn a run folder into a leaderboard submission file"),
    "leaderboard": ("madbench.leaderboard.cli", "validate submissions and build the static leaderboard site"),
    "regress": ("madbench.regress", "check that every mitigation still beats the unmitigated baseline"),
    "sweep": ("madbench.sweep", "run a grid of chains locally, on Ray or on Slurm, with confidence intervals"),
    "threshold": ("madbench.threshold", "find the smallest real-data share that keeps a metric within a tolerance (bisection)"),
    "bench": ("madbench.bench", "measure sampling/training speed against plain transformers and the FLOP floor"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage dump -> our one line
        raise MadbenchError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="madbench", description="Benchmark model autophagy (model collapse) in small LMs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for verb, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("madbench"):
                continue  # a verb whose module is not part of this build
            raise
        p = sub.add_parser(verb, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .runtime import tune_allocator

    tune_allocator()  # before any tensor exists: see madbench/runtime.py
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from . import __version__

            print(__version__)
            return 0
        if not getattr(args, "_main", None):
            parser.print_help()
            return 0
        return int(args._main(args) or 0)
    except MadbenchError as exc:
        print(f"madbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("madbench: interrupted; finished generations are saved (resume with: madbench run --resume DIR)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
