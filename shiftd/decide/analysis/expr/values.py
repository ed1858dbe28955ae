"""Values as expr-lang sees them: Go type names, equality, ordering, arithmetic and ``%v`` text.

Values are JSON-like Python objects: ``None`` (nil), ``bool``, ``int`` (held to Go's int64 by
wrapping, as Go does), ``float`` (float64), ``str``, lists/tuples (arrays) and dicts with string
keys (maps). Anything else a caller slips in is opaque: it can be passed around and compared
for identity-free equality (never equal), and every other operation on it is a type error. No
function here reads an attribute of a value.

The rules follow expr-lang's runtime (``vm/runtime``): ``+ - *`` on two ints give an int and a
float otherwise; ``/`` and ``**`` always give a float (``1 / 0`` is ``+Inf``, as in Go); ``%`` is
for ints only and truncates toward zero; ``==`` across number types compares numerically and is
false across other type pairs; ``<`` and friends take two numbers or two strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from shiftd.decide.analysis.expr.budget import Budget
from shiftd.decide.analysis.expr.errors import ExprRuntimeError

_INT64_SPAN = 2**64
_INT64_HALF = 2**63


def wrap_int64(value: int) -> int:
    """``value`` reduced to int64 the way Go's integer arithmetic overflows."""
    if -_INT64_HALF <= value < _INT64_HALF:
        return value
    return (value + _INT64_HALF) % _INT64_SPAN - _INT64_HALF


def is_int(value: object) -> bool:
    """An int that is not a ``bool`` (Python counts ``True`` as an int; Go does not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Ints and floats; ``bool`` is not a number here, unlike in Python."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: object) -> bool:
    return isinstance(value, list | tuple)


def is_map(value: object) -> bool:
    return isinstance(value, Mapping)


def type_name(value: object) -> str:
    """The Go type name expr-lang's messages use (``%T``) for a value of this shape."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "[]interface {}"
    if is_map(value):
        return "map[string]interface {}"
    return "unsupported value"


def kind_name(value: object) -> str:
    """What expr-lang's ``type()`` builtin answers."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "array"
    if is_map(value):
        return "map"
    return "unknown"


def equal(a: object, b: object, *, budget: Budget) -> bool:
    """expr-lang's ``==``: numbers by value, arrays element by element, maps by content."""
    budget.spend()
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if is_array(a) and is_array(b):
        left: Sequence[Any] = a  # type: ignore[assignment]
        right: Sequence[Any] = b  # type: ignore[assignment]
        return len(left) == len(right) and all(
            equal(x, y, budget=budget) for x, y in zip(left, right, strict=True)
        )
    if is_map(a) and is_map(b):
        lmap: Mapping[Any, Any] = a  # type: ignore[assignment]
        rmap: Mapping[Any, Any] = b  # type: ignore[assignment]
        return len(lmap) == len(rmap) and all(
            k in rmap and equal(v, rmap[k], budget=budget) for k, v in lmap.items()
        )
    return False


def to_float(value: object) -> float:
    """A number as float64; an int too large for a float becomes an infinity, as in Go."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    raise ExprRuntimeError(f"invalid operation: float64({type_name(value)})")


def _mismatch(a: object, b: object, *, op: str) -> ExprRuntimeError:
    return ExprRuntimeError(f"invalid operation: {type_name(a)} {op} {type_name(b)}")


def compare(a: object, b: object, *, op: str) -> bool:
    """``<``, ``<=``, ``>``, ``>=`` on two numbers or two strings; NaN compares false."""
    if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise _mismatch(a, b, op=op)
    x: Any = a
    y: Any = b
    match op:
        case "<":
            return bool(x < y)
        case "<=":
            return bool(x <= y)
        case ">":
            return bool(x > y)
        case _:
            return bool(x >= y)


def add(a: object, b: object) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return _arith(a, b, op="+")


def _arith(a: object, b: object, *, op: str) -> int | float:
    if not (is_number(a) and is_number(b)):
        raise _mismatch(a, b, op=op)
    x: Any = a
    y: Any = b
    if isinstance(x, int) and isinstance(y, int):
        match op:
            case "+":
                return wrap_int64(x + y)
            case "-":
                return wrap_int64(x - y)
            case _:
                return wrap_int64(x * y)
    fx, fy = to_float(x), to_float(y)
    match op:
        case "+":
            return fx + fy
        case "-":
            return fx - fy
        case _:
            return fx * fy


def subtract(a: object, b: object) -> int | float:
    return _arith(a, b, op="-")


def multiply(a: object, b: object) -> int | float:
    return _arith(a, b, op="*")


def divide(a: object, b: object) -> float:
    """Always a float, as in expr-lang; division by zero follows IEEE 754 like Go."""
    if not (is_number(a) and is_number(b)):
        raise _mismatch(a, b, op="/")
    x, y = to_float(a), to_float(b)
    if y == 0.0:
        if x == 0.0 or math.isnan(x):
            return math.nan
        negative = (x < 0) != (math.copysign(1.0, y) < 0)
        return -math.inf if negative else math.inf
    return x / y


def modulo(a: object, b: object) -> int:
    """Integers only; the sign follows the dividend, as Go's ``%`` does."""
    if not (is_int(a) and is_int(b)):
        raise _mismatch(a, b, op="%")
    if b == 0:
        raise ExprRuntimeError("integer divide by zero")
    x: int = a  # type: ignore[assignment]
    y: int = b  # type: ignore[assignment]
    remainder = abs(x) % abs(y)
    return wrap_int64(-remainder if x < 0 else remainder)


def power(a: object, b: object) -> float:
    """``math.Pow`` semantics: overflow is infinity and a domain error is NaN, never an error."""
    if not (is_number(a) and is_number(b)):
        raise _mismatch(a, b, op="**")
    x, y = to_float(a), to_float(b)
    try:
        return math.pow(x, y)
    except OverflowError:
        odd = y.is_integer() and y % 2 == 1
        return -math.inf if x < 0 and odd else math.inf
    except ValueError:
        if x == 0.0 and y < 0:
            odd = y.is_integer() and y % 2 == 1
            return -math.inf if odd and math.copysign(1.0, x) < 0 else math.inf
        return math.nan


def negate(a: object) -> int | float:
    if isinstance(a, int) and not isinstance(a, bool):
        return wrap_int64(-a)
    if isinstance(a, float):
        return -a
    raise ExprRuntimeError(f"invalid operation: - {type_name(a)}")


def format_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent form below 1e-4 or from 1e6 (``%g``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # digits before the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


def to_text(value: object, *, limit: int) -> str:
    """``fmt.Sprintf("%v", value)``; refuses to build more than ``limit`` characters."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > limit:
            raise ExprRuntimeError(f"string would be longer than {limit} characters")
        parts.append(text)

    def walk(item: object) -> None:
        if item is None:
            emit("<nil>")
        elif isinstance(item, bool):
            emit("true" if item else "false")
        elif isinstance(item, int):
            if not -(10**4000) < item < 10**4000:  # beyond what str() of an int allows
                raise ExprRuntimeError("integer is too large to format")
            emit(str(item))
        elif isinstance(item, float):
            emit(format_float(item))
        elif isinstance(item, str):
            emit(item)
        elif is_array(item):
            elements: Sequence[Any] = item  # type: ignore[assignment]
            emit("[")
            for i, element in enumerate(elements):
                if i:
                    emit(" ")
                walk(element)
            emit("]")
        elif is_map(item):
            mapping: Mapping[Any, Any] = item  # type: ignore[assignment]
            emit("map[")
            for i, key in enumerate(sorted(mapping, key=lambda k: k if isinstance(k, str) else "")):
                if i:
                    emit(" ")
                emit(f"{key}:" if isinstance(key, str) else "<unsupported key>:")
                walk(mapping[key])
            emit("]")
        else:
            emit("<unsupported value>")

    walk(value)
    return "".join(parts)
