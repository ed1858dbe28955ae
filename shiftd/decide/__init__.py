"""The pure core: pod-template hash, replica math, the step machine and route weights.

Every function here takes its inputs (spec, observed state, ``now``) as arguments and returns
immutable values; nothing performs I/O or reads a clock.
"""
