"""Measure the coverage of madbench's estimator intervals on independent sets of real KJV passages.

    python scripts/calibrate.py --truth-sets 300 --interval-sets 60 [--metrics distinct_2,self_bleu]
"""

from __future__ import annotations

import argparse

from madbench.metrics.calibration import LEXICAL, coverage, markdown


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--truth-sets", type=int, default=300)
    p.add_argument("--interval-sets", type=int, default=60)
    p.add_argument("--set-size", type=int, default=64)
    p.add_argument("--doc-words", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default=",".join(LEXICAL))
    a = p.parse_args()
    rows = coverage(a.metrics.split(","), a.truth_sets, a.interval_sets, a.set_size, a.doc_words, a.seed)
    print(markdown(rows))


if __name__ == "__main__":
    main()
