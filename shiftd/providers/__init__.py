"""Metric providers for analysis, one module per provider behind a small Protocol."""
