"""The work one evaluation may do, so a hostile or careless condition cannot stall the daemon.

A ``Budget`` is created per evaluation (never shared): each node visited, each predicate
iteration and each element a builtin scans or creates spends steps. Strings and arrays an
expression builds are capped in size before they are built.
"""

from __future__ import annotations

from shiftd.decide.analysis.expr.errors import ExprRuntimeError

MAX_STEPS = 100_000
MAX_STRING_LENGTH = 100_000
MAX_ARRAY_LENGTH = 100_000


class Budget:
    """Steps left for one evaluation."""

    __slots__ = ("limit", "remaining")

    def __init__(self, limit: int = MAX_STEPS) -> None:
        self.limit = limit
        self.remaining = limit

    def spend(self, steps: int = 1) -> None:
        self.remaining -= steps
        if self.remaining < 0:
            raise ExprRuntimeError(f"evaluation took more than {self.limit} steps")

    def string(self, length: int) -> None:
        """Before building a string of ``length`` characters: cap it and pay for it."""
        if length > MAX_STRING_LENGTH:
            raise ExprRuntimeError(f"string would be longer than {MAX_STRING_LENGTH} characters")
        self.spend(1 + length // 64)

    def array(self, length: int) -> None:
        """Before building an array of ``length`` elements: cap it and pay for it."""
        if length > MAX_ARRAY_LENGTH:
            raise ExprRuntimeError(f"array would be longer than {MAX_ARRAY_LENGTH} elements")
        self.spend(1 + length)
