"""The entry points: compile a condition once when its template loads, evaluate it per measurement.

``compile_condition`` parses (and caches by source) so a template with a broken
``successCondition`` is refused at load time with a line and column; ``Condition.evaluate``
walks the tree against the variables; ``evaluate_condition`` is Argo's ``EvalCondition``: the
variable ``result`` and a bool answer, anything else being an error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shiftd.decide.analysis.expr.budget import MAX_STEPS, Budget
from shiftd.decide.analysis.expr.errors import ExprRuntimeError
from shiftd.decide.analysis.expr.evaluator import Evaluator
from shiftd.decide.analysis.expr.nodes import Node
from shiftd.decide.analysis.expr.parser import parse
from shiftd.decide.analysis.expr.values import type_name


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed expression; immutable and safe to share between evaluations."""

    source: str
    tree: Node

    def evaluate(self, variables: Mapping[str, Any], *, max_steps: int = MAX_STEPS) -> Any:
        """The expression's value; ``ExprRuntimeError`` if evaluation fails or runs too long."""
        try:
            return Evaluator(variables, Budget(max_steps)).eval(self.tree, None)
        except RecursionError:
            # Only deeply nested *values* get here (the tree's depth is capped at parse time).
            raise ExprRuntimeError("value is nested too deeply to evaluate") from None


@functools.lru_cache(maxsize=512)
def compile_condition(source: str) -> Condition:
    """Parse ``source``; ``ExprSyntaxError`` (with line and column) if it is not an expression."""
    return Condition(source, parse(source))


def evaluate_condition(source: str, result: Any) -> bool:
    """Argo's ``EvalCondition``: evaluate with ``result`` bound; the answer must be a bool."""
    value = compile_condition(source).evaluate({"result": result})
    if not isinstance(value, bool):
        raise ExprRuntimeError(f"expected bool, but got {type_name(value)}")
    return value
