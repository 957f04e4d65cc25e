"""The recursive loop: chains, generation steps, regimes, contamination schedules, ecosystems."""

from madbench.loop import ecosystem, regimes  # noqa: F401  (the built-in regimes register themselves)
