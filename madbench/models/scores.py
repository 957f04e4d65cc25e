"""What one model's weights, as they are now, have already scored: kept by the first reader, read by the next.

    madbench run --preset smoke     # evaluate_model's perplexity forward feeds lm-eval and the rare-token metrics

A :class:`ScoreCache` belongs to one model object and one state of its weights; whoever holds the model
holds its cache and passes it on explicitly (``MetricContext.scores``, ``MadbenchLM(scores=...)``,
``run_tasks(scores=...)``). New weights get a new cache (madbench/loop/steps.py makes one per trained
model; the run keeps one per generation-0 reference model), so nothing stale is ever read. The tables:

  target_logp    (texts, max_length) -> each text's target-token log-probabilities (metrics/perplexity.py;
                 read by metrics/rare.py)
  sequence_logp  BOS + token ids -> log-probabilities of ids[1:] (metrics/perplexity.py; read by lm-eval's
                 rolling loglikelihood, evaluation/lmeval_model.py)
  rare_probs     (encoded held-out texts, batch size) -> rare-token probabilities (metrics/rare.py, reference model)
  log_ppl        (samples, batch size) -> per-sample log perplexity (metrics/tail.py, reference model)
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, Optional


class ScoreCache:
    """Named tables of scores of one model's current weights; ``get`` is None for what was not scored."""

    def __init__(self) -> None:
        self._tables: Dict[str, Dict[Hashable, Any]] = {}

    def get(self, table: str, key: Hashable) -> Optional[Any]:
        return self._tables.get(table, {}).get(key)

    def put(self, table: str, key: Hashable, value: Any) -> Any:
        self._tables.setdefault(table, {})[key] = value
        return value

    def replace(self, table: str, entries: Dict[Hashable, Any]) -> None:
        """Keep only ``entries`` in ``table`` (a metric's latest scoring replaces its earlier one)."""
        self._tables[table] = dict(entries)

    def clear(self) -> None:
        self._tables.clear()

    def __repr__(self) -> str:
        return f"ScoreCache({ {k: len(v) for k, v in self._tables.items()} })"
