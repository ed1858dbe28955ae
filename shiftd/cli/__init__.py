"""Command-line entry points: ``shiftd`` (run, demo, check-config) and ``shiftctl``."""
