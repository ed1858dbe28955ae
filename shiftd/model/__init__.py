"""Typed, immutable views of the resources shiftd reads, and their validation.

Parsing a raw object either yields a model or raises ``InvalidSpecError`` with a message fit
for the Rollout's InvalidSpec condition. Nothing here performs I/O.
"""
