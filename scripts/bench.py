"""Thin wrapper: ``python scripts/bench.py [ARGS]`` is ``madbench bench [ARGS]``."""

import sys

from madbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
