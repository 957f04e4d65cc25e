"""The run folder and its files: results.json, atomic writes, checksums, locks, provenance."""
