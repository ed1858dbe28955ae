"""Argo's analysis condition language: expr-lang (github.com/expr-lang/expr) on a lark grammar.

``successCondition`` / ``failureCondition`` strings compile to a ``Condition`` (a syntax tree)
when a template is loaded and are evaluated against a measurement's ``result``. Pure: no I/O,
no Python ``eval``, no attribute access on values; a step budget and size caps bound the work.

Modules, in the order data flows: ``parser`` (grammar, source to ``nodes``), ``evaluator`` (the
walk; predicates), ``functions`` (builtins and Argo's helpers), ``values`` (Go-like types,
equality, arithmetic, ``%v``), ``regex`` (``matches`` with a backtracking guard), ``budget``,
``errors``, and ``condition`` (the entry points re-exported here).
"""

from shiftd.decide.analysis.expr.condition import Condition, compile_condition, evaluate_condition
from shiftd.decide.analysis.expr.errors import ExprError, ExprRuntimeError, ExprSyntaxError

__all__ = [
    "Condition",
    "ExprError",
    "ExprRuntimeError",
    "ExprSyntaxError",
    "compile_condition",
    "evaluate_condition",
]
