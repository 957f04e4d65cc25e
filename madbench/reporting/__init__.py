"""Seed statistics, tables, figures and experiment trackers."""
