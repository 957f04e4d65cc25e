"""Side effects of a run, hung on the loop's hooks so the loop itself stays short (like TRL's TrainerCallback).

    madbench run --preset smoke                           # ProgressLog + EventLog + ResultsWriter
    madbench run --preset smoke --report-to disk          # ResultsWriter also feeds the trackers (madbench/reporting/trackers.py)

A callback implements any of the hooks below; they run on the main process only, in order:

    on_run_begin(total, done)               Runner.run starts: planned and already finished generations
    on_gen0_end(seed, seconds)              a seed's generation 0 was trained and published
    on_generation_end(chain, g, meta)       a generation was published (meta: its meta.json record)
    on_step_end(chain, g, meta, seconds)    Runner.run finished one step (the ecosystem metrics included)
"""

from __future__ import annotations

import time
from typing import Callable, List, Sequence


class Callback:
    """The hooks, each a no-op: subclass and override what you need."""

    def on_run_begin(self, total: int, done: int) -> None:
        pass

    def on_gen0_end(self, seed: int, seconds: float) -> None:
        pass

    def on_generation_end(self, chain, g: int, meta: dict) -> None:
        pass

    def on_step_end(self, chain, g: int, meta: dict, seconds: float) -> None:
        pass


class CallbackList(Callback):
    """Calls every callback's hook in order."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks: List[Callback] = list(callbacks)

    def on_run_begin(self, total, done):
        for c in self.callbacks:
            c.on_run_begin(total, done)

    def on_gen0_end(self, seed, seconds):
        for c in self.callbacks:
            c.on_gen0_end(seed, seconds)

    def on_generation_end(self, chain, g, meta):
        for c in self.callbacks:
            c.on_generation_end(chain, g, meta)

    def on_step_end(self, chain, g, meta, seconds):
        for c in self.callbacks:
            c.on_step_end(chain, g, meta, seconds)


class EventLog(Callback):
    """RUN/events.jsonl: one line per trained generation 0 and per finished generation."""

    def __init__(self, store):
        self.store = store

    def on_gen0_end(self, seed, seconds):
        self.store.append_event(event="gen0_trained", seed=seed, seconds=round(seconds, 2))

    def on_generation_end(self, chain, g, meta):
        self.store.append_event(event="generation_done", chain=chain.id, generation=g, seconds=round(meta["seconds"], 2))


class ProgressLog(Callback):
    """``[k/N] <chain> gen g: perplexity=... (12s, ETA 3.4 min)`` after every computed generation."""

    def __init__(self, log: Callable[[str], None], headline: Sequence[str]):
        self.log, self.headline = log, tuple(headline)
        self.total = self.done = 0
        self.times: List[float] = []

    def on_run_begin(self, total, done):
        self.total, self.done = total, done

    def on_step_end(self, chain, g, meta, seconds):
        self.times.append(seconds)
        self.done += 1
        eta = (sum(self.times) / len(self.times)) * (self.total - self.done)
        metrics = meta["metrics"]
        shown = [k for k in self.headline if metrics.get(k) is not None] or list(metrics)[:4]
        values = " ".join(f"{k}={metrics[k]:.4g}" for k in shown)
        self.log(f"[{self.done}/{self.total}] {chain.id} gen {g}: {values} ({seconds:.0f}s, ETA {eta / 60:.1f} min)")
