"""The recursive loop: chains, generation steps, regimes, contamination schedules, ecosystems."""
