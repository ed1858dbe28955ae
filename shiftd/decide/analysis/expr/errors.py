"""The two ways a condition can go wrong, so callers can tell a bad template from a bad measurement.

::

    ExprError
    ├── ExprSyntaxError   the source does not parse (or is over a size/nesting limit);
    │                     raised by ``compile_condition`` when the template is loaded
    └── ExprRuntimeError  evaluation failed: a type mismatch, an index out of range, an unknown
                          name, a bad ``asInt`` input, a non-bool condition, the step budget spent;
                          Argo records such a measurement as ``Error``
"""

from __future__ import annotations


class ExprError(Exception):
    """Base of every error the condition language raises; ``message`` is the text alone."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExprSyntaxError(ExprError):
    """The source is not a valid expression; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.line = line
        self.column = column


class ExprRuntimeError(ExprError):
    """Evaluating a compiled expression against some variables failed."""
