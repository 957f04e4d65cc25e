"""What every step of a generation reads: a frozen :class:`StepContext` and its model provider.

    madbench run --preset smoke       # the Runner builds one StepContext and hands it to every step

The steps (madbench/loop/steps.py) take a ``StepContext`` instead of the whole Runner: the config,
the corpus split, the tokenizer and base model, the run folder (``RunStore``), the contamination
schedule resolved once (madbench/loop/schedules.py) and a :class:`Models` provider that loads saved
weights and keeps each seed's generation-0 reference model (with its ScoreCache) for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

from madbench.config.run_config import RunConfig
from madbench.data.corpus import CorpusSplit, Doc
from madbench.loop.schedules import Schedule
from madbench.models import weights
from madbench.models.scores import ScoreCache
from madbench.results.run_store import RunStore


class Models:
    """Saved weights of a run as models: a generation's, the previous one's, and each seed's generation-0 reference."""

    def __init__(self, base, cfg: RunConfig, store: RunStore):
        self.base, self.cfg, self.store = base, cfg, store
        self._reference: Dict[int, Tuple[Any, ScoreCache]] = {}  # seed -> (generation-0 model, its ScoreCache)

    def weights_dir(self, folder: Path) -> Path:
        """folder/adapter (LoRA) or folder/model (train.method=full)."""
        return folder / weights.dirname(self.cfg)

    def load(self, folder: Path):
        """The weights saved in a generation folder, as an eval-mode model."""
        return weights.load(self.base, self.cfg, self.weights_dir(folder))

    def previous_weights(self, chain, g: int) -> Path:
        """The weights generation ``g`` starts from (and whose model wrote generation g - 1's samples)."""
        return self.weights_dir(self.store.gen_dir(chain.id, g - 1) if g > 1 else self.store.gen0_dir(chain.seed))

    def reference(self, seed: int):
        """Generation 0 of ``seed``, loaded once per run (verifier-style mitigations, the reference panel)."""
        return self._loaded_reference(seed)[0]

    def reference_scores(self, seed: int) -> ScoreCache:
        """What the reference model of ``seed`` has scored so far in this run."""
        return self._loaded_reference(seed)[1]

    def _loaded_reference(self, seed: int) -> Tuple[Any, ScoreCache]:
        if seed not in self._reference:
            self._reference[seed] = (self.load(self.store.gen0_dir(seed)), ScoreCache())
        return self._reference[seed]


@dataclass(frozen=True)
class StepContext:
    """What a run shares with its steps; built once by the Runner, never changed."""

    cfg: RunConfig
    split: CorpusSplit
    tokenizer: Any
    base: Any
    store: RunStore
    schedule: Schedule  # the real share of every generation
    models: Models
    is_main: bool = True  # the process that writes (the others of an `accelerate launch` only compute)

    def history(self, chain, upto: int) -> Dict[int, List[Doc]]:
        """{generation: kept samples} of a chain's generations before ``upto``."""
        return {g: self.store.read_samples(chain.id, g) for g in range(upto)}
