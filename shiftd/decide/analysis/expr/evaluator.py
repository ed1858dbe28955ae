"""The tree walker: gives a syntax tree its value for some variables, spending a step budget.

Member access only ever looks a key up in a mapping or an index up in an array or string; it
never reads a Python attribute, so ``result.__class__`` is just a missing key (nil). Predicates
(``all(xs, {# > 1})``, or without braces ``all(xs, # > 1)``) run their body once per element with
``#`` bound to it, ``#index`` to its position and, in ``reduce``, ``#acc`` to the accumulator;
``.field`` is ``#.field``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shiftd.decide.analysis.expr import values
from shiftd.decide.analysis.expr.budget import Budget
from shiftd.decide.analysis.expr.errors import ExprRuntimeError
from shiftd.decide.analysis.expr.functions import FUNCTIONS
from shiftd.decide.analysis.expr.nodes import (
    ArrayLit,
    Binary,
    Call,
    Chain,
    Closure,
    Conditional,
    Literal,
    MapLit,
    Member,
    MethodCall,
    Node,
    Pointer,
    Slice,
    Unary,
    Var,
)
from shiftd.decide.analysis.expr.regex import matches

_NO_ACC = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    """The element a predicate is looking at."""

    element: Any
    index: int
    acc: Any = _NO_ACC


class _NilInChain(Exception):
    """A ``?.`` met nil: unwinds to the chain's outermost link, which yields nil."""


def _as_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExprRuntimeError(f"{what} must be bool, not {values.type_name(value)}")
    return value


def _index(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and abs(value) < 2**63:  # Go truncates a float index; NaN fails
        return int(value)
    raise ExprRuntimeError(f"invalid {what} (type {values.type_name(value)})")


def fetch(container: object, key: object) -> Any:
    """``container[key]`` as expr-lang's ``runtime.Fetch`` does it, on JSON-like values only."""
    if values.is_map(container):
        if not isinstance(key, str):
            raise ExprRuntimeError(
                f"cannot use {values.type_name(key)} as a key of {values.type_name(container)}"
            )
        return container.get(key)  # type: ignore[attr-defined]
    if values.is_array(container) or isinstance(container, str):
        sequence: Sequence[Any] = container  # type: ignore[assignment]
        index = _index(key, "index")
        length = len(sequence)
        position = index + length if index < 0 else index
        if not 0 <= position < length:
            raise ExprRuntimeError(f"index out of range: {index} (array length is {length})")
        return sequence[position]
    shown = key if isinstance(key, str | int | float) else values.type_name(key)
    raise ExprRuntimeError(f"cannot fetch {shown} from {values.type_name(container)}")


def _slice(container: object, *, start: object, end: object) -> Any:
    if not (values.is_array(container) or isinstance(container, str)):
        raise ExprRuntimeError(f"cannot slice {values.type_name(container)}")
    sequence: Sequence[Any] = container  # type: ignore[assignment]
    length = len(sequence)
    low = 0 if start is None else _index(start, "slice index")
    high = length if end is None else _index(end, "slice index")
    low = max(low + length if low < 0 else low, 0)
    high = min(max(high + length if high < 0 else high, 0), length)
    low = min(low, high)
    return sequence[low:high] if isinstance(sequence, str) else list(sequence[low:high])


class Evaluator:
    """One evaluation: the variables, the budget, and the walk."""

    def __init__(self, variables: Mapping[str, Any], budget: Budget) -> None:
        self.variables = variables
        self.budget = budget

    def eval(self, node: Node, frame: _Frame | None) -> Any:
        self.budget.spend()
        match node:
            case Literal(value=value):
                return value
            case Var(name=name):
                return self._variable(name)
            case Pointer(name=name):
                return self._pointer(name, frame)
            case Member(obj=obj, key=key, optional=optional):
                container = self.eval(obj, frame)
                if container is None and optional:
                    raise _NilInChain
                return fetch(container, self.eval(key, frame))
            case Chain(inner=inner):
                try:
                    return self.eval(inner, frame)
                except _NilInChain:
                    return None
            case Slice(obj=obj, start=start, end=end):
                container = self.eval(obj, frame)
                low = None if start is None else self.eval(start, frame)
                high = None if end is None else self.eval(end, frame)
                return _slice(container, start=low, end=high)
            case Unary(op=op, operand=operand):
                return self._unary(op, self.eval(operand, frame))
            case Binary():
                return self._binary(node, frame)
            case Conditional(cond=cond, then=then, otherwise=otherwise):
                chosen = then if _as_bool(self.eval(cond, frame), "condition of ?:") else otherwise
                return self.eval(chosen, frame)
            case ArrayLit(items=items):
                self.budget.array(len(items))
                return [self.eval(item, frame) for item in items]
            case MapLit(items=items):
                self.budget.array(len(items))
                return {key: self.eval(value, frame) for key, value in items}
            case Call(name=name, args=args):
                return self._call(name, args, frame)
            case MethodCall(obj=obj, name=name):
                receiver = self.eval(obj, frame)
                raise ExprRuntimeError(f"cannot call method {name} on {values.type_name(receiver)}")
            case Closure():
                raise ExprRuntimeError("a closure {...} can only be a predicate argument")
        raise ExprRuntimeError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover

    def _variable(self, name: str) -> Any:
        if name in self.variables:
            return self.variables[name]
        if name == "$env":
            return dict(self.variables)
        raise ExprRuntimeError(f"unknown name {name}")

    @staticmethod
    def _pointer(name: str, frame: _Frame | None) -> Any:
        if frame is None:
            raise ExprRuntimeError("cannot use pointer accessor outside predicate")
        match name:
            case "":
                return frame.element
            case "index":
                return frame.index
            case "acc" if frame.acc is not _NO_ACC:
                return frame.acc
        raise ExprRuntimeError(f"unknown pointer #{name}")

    @staticmethod
    def _unary(op: str, operand: object) -> Any:
        match op:
            case "!":
                return not _as_bool(operand, "operand of !")
            case "-":
                return values.negate(operand)
            case _:
                if not values.is_number(operand):
                    raise ExprRuntimeError(f"invalid operation: + {values.type_name(operand)}")
                return operand

    def _binary(self, node: Binary, frame: _Frame | None) -> Any:
        op, left_node, right_node = node.op, node.left, node.right
        if op in ("&&", "||"):
            left = _as_bool(self.eval(left_node, frame), f"left operand of {op}")
            if left == (op == "||"):
                return left
            return _as_bool(self.eval(right_node, frame), f"right operand of {op}")
        if op == "??":
            left = self.eval(left_node, frame)
            return self.eval(right_node, frame) if left is None else left
        left = self.eval(left_node, frame)
        right = self.eval(right_node, frame)
        negated = op.startswith("not ")
        if negated:
            op = op[4:]
        match op:
            case "==":
                return values.equal(left, right, budget=self.budget)
            case "!=":
                return not values.equal(left, right, budget=self.budget)
            case "<" | "<=" | ">" | ">=":
                return values.compare(left, right, op=op)
            case "+":
                result = values.add(left, right)
                if isinstance(result, str):
                    self.budget.string(len(result))
                return result
            case "-":
                return values.subtract(left, right)
            case "*":
                return values.multiply(left, right)
            case "/":
                return values.divide(left, right)
            case "%":
                return values.modulo(left, right)
            case "**":
                return values.power(left, right)
            case "..":
                return self._range(left, right)
            case "in":
                return self._contains_member(left, right) != negated
            case _:
                return self._string_operator(left, right, op=op) != negated

    def _range(self, low: object, high: object) -> list[int]:
        if not (values.is_int(low) and values.is_int(high)):
            raise ExprRuntimeError(
                f"invalid operation: {values.type_name(low)} .. {values.type_name(high)}"
            )
        first: int = low  # type: ignore[assignment]
        last: int = high  # type: ignore[assignment]
        self.budget.array(max(last - first + 1, 0))
        return list(range(first, last + 1))

    def _contains_member(self, needle: object, haystack: object) -> bool:
        if haystack is None:
            return False
        if values.is_array(haystack):
            items: Sequence[Any] = haystack  # type: ignore[assignment]
            return any(values.equal(item, needle, budget=self.budget) for item in items)
        if values.is_map(haystack):
            if needle is None:
                return False
            if not isinstance(needle, str):
                raise ExprRuntimeError(
                    f"cannot use {values.type_name(needle)} as a key of "
                    f"{values.type_name(haystack)}"
                )
            return needle in haystack  # type: ignore[operator]
        raise ExprRuntimeError(f'operator "in" not defined on {values.type_name(haystack)}')

    def _string_operator(self, left: object, right: object, *, op: str) -> bool:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise ExprRuntimeError(
                f"invalid operation: {values.type_name(left)} {op} {values.type_name(right)}"
            )
        self.budget.spend(1 + len(left) // 64)
        match op:
            case "contains":
                return right in left
            case "startsWith":
                return left.startswith(right)
            case "endsWith":
                return left.endswith(right)
            case _:
                return matches(left, right)

    def _call(self, name: str, args: tuple[Node, ...], frame: _Frame | None) -> Any:
        predicate = _PREDICATES.get(name)
        if predicate is not None and len(args) >= 2:
            return predicate(self, args, frame)
        function = FUNCTIONS.get(name)
        if function is None:
            if predicate is not None:
                raise ExprRuntimeError(f"not enough arguments to call {name}")
            raise ExprRuntimeError(f"unknown func {name}")
        return function([self.eval(arg, frame) for arg in args], self.budget)

    # --- predicates --------------------------------------------------------------------------

    def elements(self, args: tuple[Node, ...], frame: _Frame | None, *, name: str) -> Sequence[Any]:
        """The array a predicate builtin iterates over (its first argument)."""
        collection = self.eval(args[0], frame)
        if not values.is_array(collection):
            raise ExprRuntimeError(
                f"builtin {name} takes an array, not {values.type_name(collection)}"
            )
        items: Sequence[Any] = collection
        return items

    def run(self, body: Node, element: Any, *, index: int, acc: Any = _NO_ACC) -> Any:
        """The predicate's value for one element."""
        self.budget.spend()
        return self.eval(body, _Frame(element=element, index=index, acc=acc))

    def test(self, body: Node, element: Any, *, index: int, name: str) -> bool:
        """The predicate's verdict on one element; it must be a bool."""
        result = self.run(body, element, index=index)
        if not isinstance(result, bool):
            raise ExprRuntimeError(
                f"predicate of {name} must return bool, not {values.type_name(result)}"
            )
        return result


#: A builtin that takes a predicate: gets the unevaluated arguments and evaluates them itself.
_Predicate = Callable[[Evaluator, tuple[Node, ...], "_Frame | None"], Any]


def _body(name: str, args: tuple[Node, ...], arity: int) -> Node:
    if len(args) != arity:
        raise ExprRuntimeError(f"builtin {name} takes {arity} arguments, not {len(args)}")
    node = args[1]
    return node.body if isinstance(node, Closure) else node


def _quantifier(name: str, *, stop_on: bool, found: bool, exhausted: bool) -> _Predicate:
    """all / any / none: stop at the first element whose test is ``stop_on``."""

    def run(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> bool:
        body = _body(name, args, 2)
        for i, item in enumerate(ev.elements(args, frame, name=name)):
            if ev.test(body, item, index=i, name=name) == stop_on:
                return found
        return exhausted

    return run


def _one(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> bool:
    body = _body("one", args, 2)
    hits = 0
    for i, item in enumerate(ev.elements(args, frame, name="one")):
        if ev.test(body, item, index=i, name="one"):
            hits += 1
            if hits > 1:
                return False
    return hits == 1


def _filter(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> list[Any]:
    body = _body("filter", args, 2)
    items = ev.elements(args, frame, name="filter")
    return [item for i, item in enumerate(items) if ev.test(body, item, index=i, name="filter")]


def _map(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> list[Any]:
    body = _body("map", args, 2)
    items = ev.elements(args, frame, name="map")
    return [ev.run(body, item, index=i) for i, item in enumerate(items)]


def _count(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> int:
    body = _body("count", args, 2)
    items = ev.elements(args, frame, name="count")
    return sum(1 for i, item in enumerate(items) if ev.test(body, item, index=i, name="count"))


def _sum(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> Any:
    body = _body("sum", args, 2)
    items = ev.elements(args, frame, name="sum")
    mapped = [ev.run(body, item, index=i) for i, item in enumerate(items)]
    return FUNCTIONS["sum"]([mapped], ev.budget)


def _finder(name: str, *, from_end: bool, want_index: bool) -> _Predicate:
    def run(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> Any:
        body = _body(name, args, 2)
        items = ev.elements(args, frame, name=name)
        order = range(len(items) - 1, -1, -1) if from_end else range(len(items))
        for i in order:
            if ev.test(body, items[i], index=i, name=name):
                return i if want_index else items[i]
        return -1 if want_index else None

    return run


def _reduce(ev: Evaluator, args: tuple[Node, ...], frame: _Frame | None) -> Any:
    if len(args) not in (2, 3):
        raise ExprRuntimeError(f"builtin reduce takes 2 or 3 arguments, not {len(args)}")
    node = args[1]
    body = node.body if isinstance(node, Closure) else node
    items = ev.elements(args, frame, name="reduce")
    start = 0
    if len(args) == 3:
        acc = ev.eval(args[2], frame)
    elif items:
        acc, start = items[0], 1
    else:
        raise ExprRuntimeError("reduce of empty array with no initial value")
    for i in range(start, len(items)):
        acc = ev.run(body, items[i], index=i, acc=acc)
    return acc


_PREDICATES: Mapping[str, _Predicate] = MappingProxyType(
    {
        "all": _quantifier("all", stop_on=False, found=False, exhausted=True),
        "any": _quantifier("any", stop_on=True, found=True, exhausted=False),
        "none": _quantifier("none", stop_on=True, found=False, exhausted=True),
        "one": _one,
        "filter": _filter,
        "map": _map,
        "count": _count,
        "sum": _sum,
        "find": _finder("find", from_end=False, want_index=False),
        "findIndex": _finder("findIndex", from_end=False, want_index=True),
        "findLast": _finder("findLast", from_end=True, want_index=False),
        "findLastIndex": _finder("findLastIndex", from_end=True, want_index=True),
        "reduce": _reduce,
    }
)
