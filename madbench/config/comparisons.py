"""A paper's claims as comparisons fixed in advance: what a protocol preset says its paper found.

    from madbench.config.comparisons import Comparison
    Comparison("replace_above_accumulate", "fully_synthetic/replace", "synthetic_augmentation/accumulate",
               "perplexity", direction="greater", margin=0.02)
    madbench report runs/gerstgrasser2024          # the preset's comparisons, Holm-adjusted, with their verdicts

Each protocol in :mod:`madbench.config.protocols` lists its ``"comparisons"``; ``madbench report`` and the
leaderboard's protocol pages compute those and only those as the headline (madbench/reporting/verdicts.py,
the rules in docs/reproductions.md), and pre-flight refuses a run that cannot compute them
(madbench/config/preflight.py). The compared quantity, per seed (arms sharing a seed are paired):

- ``claim="level"``: treatment minus control at ``generation`` (``"last"``: the last generation both reached);
  without a control, the treatment's change from generation 0 (its own start);
- ``claim="trend"``: the treatment's slope over generations >= 1 (least squares, per generation: the
  change after generation 1, so a one-off penalty at generation 1 is not read as compounding) minus the
  control's slope; without a control, the treatment's slope against 0.

``direction``: the sign the paper claims for that quantity ("greater": above 0, "less": below).
``margin``: the equivalence bound of "no effect", as a fraction of the control's (else the treatment's)
mean at generation 0: 0.02 is 2% of the starting perplexity (an absolute bound would mean different things
on the tiny model, near 130, and on SmolLM2, near 25). An arm is a chain label (``regime/mode`` plus
``+mitigation``s) and, where a protocol's arms are separate run folders (a sweep's decoding axis), the
config values that pick its runs (``treatment_where``: ``{"sampling.num_beams": 5}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple, Union

from madbench.errors import MadbenchError

CLAIMS = ("level", "trend")
DIRECTIONS = ("greater", "less")


def _pairs(where) -> Tuple[Tuple[str, object], ...]:
    if isinstance(where, Mapping):
        return tuple(sorted(where.items()))
    return tuple(tuple(p) for p in where or ())


@dataclass(frozen=True)
class Comparison:
    """One claim of a paper: ``treatment`` against ``control`` on ``metric`` (module docstring)."""

    name: str
    treatment: str
    control: Optional[str]
    metric: str
    generation: Union[int, str] = "last"
    direction: str = "greater"
    margin: float = 0.02
    claim: str = "level"
    paper: str = ""  # the paper's words for the claim, shown beside the verdict
    treatment_where: Tuple[Tuple[str, object], ...] = field(default=())
    control_where: Tuple[Tuple[str, object], ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "treatment_where", _pairs(self.treatment_where))
        object.__setattr__(self, "control_where", _pairs(self.control_where))
        check(self)

    def arm_label(self, side: str) -> str:
        """'fully_synthetic/replace (sampling.num_beams=5)': a side's chain and the config values that pick it."""
        chain, where = (self.treatment, self.treatment_where) if side == "treatment" else (self.control, self.control_where)
        if chain is None:
            return "generation 0" if self.claim == "level" else "0"
        return chain + (" (" + ", ".join(f"{k}={v}" for k, v in where) + ")" if where else "")


def check(c: Comparison) -> None:
    """One line for a comparison that cannot be computed as written (any protocol's, at import time)."""
    who = f"comparison '{c.name}'"
    if c.claim not in CLAIMS:
        raise MadbenchError(f"{who}: claim must be one of {', '.join(CLAIMS)}, not {c.claim!r}")
    if c.direction not in DIRECTIONS:
        raise MadbenchError(f"{who}: direction must be one of {', '.join(DIRECTIONS)}, not {c.direction!r}")
    if not isinstance(c.margin, (int, float)) or isinstance(c.margin, bool) or not c.margin > 0:
        raise MadbenchError(f"{who}: the equivalence margin must be above 0 (a fraction of the generation-0 mean), "
                            f"not {c.margin!r}")
    if c.generation != "last" and not (isinstance(c.generation, int) and c.generation >= 1):
        raise MadbenchError(f"{who}: generation must be 'last' or an integer >= 1, not {c.generation!r}")
    if c.claim == "trend" and c.generation != "last":
        raise MadbenchError(f"{who}: a trend claim runs over every generation >= 1; leave generation 'last'")
    for label in (c.treatment, c.control):
        if label is not None and (not isinstance(label, str) or "/" not in label.split("+")[0]):
            raise MadbenchError(f"{who}: an arm is a chain label 'regime/mode' (plus '+mitigation'), not {label!r}")


def needs_generations(c: Comparison) -> int:
    """The fewest generations after generation 0 a run needs to compute ``c``."""
    if c.claim == "trend":
        return 2
    return 1 if c.generation == "last" else int(c.generation)
