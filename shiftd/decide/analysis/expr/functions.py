"""Builtins taking plain values: expr-lang's library (the part conditions use) and Argo's helpers.

Argo Rollouts adds ``asInt``, ``asFloat``, ``isNaN``, ``isInf``, ``isNil`` and ``default`` to the
environment (``utils/evaluate/evaluate.go``). Argo's ``isNil(x)`` and ``default(x, d)`` ignore
``x`` and look at ``result``; here they look at their argument, which is what every documented
use (``default(result, 0)``) means and agrees with Argo's answer for it.

Builtins taking a predicate (``all``, ``filter``, ``map``...) live with the evaluator, which
owns the closures. Each function here takes its evaluated arguments and the evaluation's budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from shiftd.decide.analysis.expr.budget import MAX_STRING_LENGTH, Budget
from shiftd.decide.analysis.expr.errors import ExprRuntimeError
from shiftd.decide.analysis.expr.values import (
    is_array,
    is_map,
    is_number,
    kind_name,
    to_float,
    to_text,
    type_name,
    wrap_int64,
)

Function = Callable[[Sequence[Any], Budget], Any]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Go's strconv.ParseInt(s, 10, 64) and strconv.ParseFloat(s, 64) syntaxes (decimal only).
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


def _arity(name: str, args: Sequence[Any], *, low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if len(args) < low:
        raise ExprRuntimeError(f"not enough arguments to call {name}")
    if len(args) > high:
        raise ExprRuntimeError(f"too many arguments to call {name}")


def _bad(name: str, value: object) -> ExprRuntimeError:
    return ExprRuntimeError(f"invalid argument for {name} (type {type_name(value)})")


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _bad(name, value)
    return value


def _array(name: str, value: object, budget: Budget) -> Sequence[Any]:
    if not is_array(value):
        raise _bad(name, value)
    items: Sequence[Any] = value  # type: ignore[assignment]
    budget.spend(len(items))
    return items


def _int_arg(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    raise _bad(name, value)


def _numbers(name: str, value: object, budget: Budget) -> Sequence[Any]:
    items = _array(name, value, budget)
    for item in items:
        if not is_number(item):
            raise ExprRuntimeError(f"invalid argument for {name}: an element is {type_name(item)}")
    return items


def _float_to_int(name: str, value: float) -> int:
    if not math.isfinite(value):
        raise ExprRuntimeError(f"{name}: cannot convert {value} to int")
    return wrap_int64(int(value))


def _parse_int(name: str, text: str) -> int:
    if not _GO_INT.fullmatch(text):
        raise ExprRuntimeError(f'{name}: parsing "{text}": invalid syntax')
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ExprRuntimeError(f'{name}: parsing "{text}": value out of range')
    return value


def _parse_float(name: str, text: str) -> float:
    if not _GO_FLOAT.fullmatch(text):
        raise ExprRuntimeError(f'{name}: parsing "{text}": invalid syntax')
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise ExprRuntimeError(f'{name}: parsing "{text}": value out of range')
    return value


# --- conversions -----------------------------------------------------------------------------


def _len(args: Sequence[Any], budget: Budget) -> int:
    _arity("len", args, low=1)
    (value,) = args
    if isinstance(value, str) or is_array(value) or is_map(value):
        return len(value)
    raise _bad("len", value)


def _abs(args: Sequence[Any], budget: Budget) -> int | float:
    _arity("abs", args, low=1)
    (value,) = args
    if isinstance(value, int) and not isinstance(value, bool):
        return wrap_int64(abs(value))
    if isinstance(value, float):
        return abs(value)
    raise _bad("abs", value)


def _to_int(args: Sequence[Any], budget: Budget) -> int:
    _arity("int", args, low=1)
    (value,) = args
    if isinstance(value, int) and not isinstance(value, bool):
        return wrap_int64(value)
    if isinstance(value, float):
        return _float_to_int("int", value)
    if isinstance(value, str):
        return _parse_int("strconv.Atoi", value)
    raise _bad("int", value)


def _to_float(args: Sequence[Any], budget: Budget) -> float:
    _arity("float", args, low=1)
    (value,) = args
    if is_number(value):
        return to_float(value)
    if isinstance(value, str):
        return _parse_float("strconv.ParseFloat", value)
    raise _bad("float", value)


def _to_string(args: Sequence[Any], budget: Budget) -> str:
    _arity("string", args, low=1)
    text = to_text(args[0], limit=MAX_STRING_LENGTH)
    budget.string(len(text))
    return text


def _type(args: Sequence[Any], budget: Budget) -> str:
    _arity("type", args, low=1)
    return kind_name(args[0])


# --- numbers ---------------------------------------------------------------------------------


def _extreme(name: str, pick_larger: bool) -> Function:
    def extreme(args: Sequence[Any], budget: Budget) -> Any:
        flat: list[Any] = []
        for arg in args:
            flat.extend(_numbers(name, arg, budget) if is_array(arg) else [arg])
        if not flat:
            raise ExprRuntimeError(f"not enough arguments to call {name}")
        best = flat[0]
        for item in flat:
            if not is_number(item):
                raise _bad(name, item)
            if (item > best) if pick_larger else (item < best):
                best = item
        return best

    return extreme


def _rounding(name: str, how: Callable[[float], float]) -> Function:
    def rounding(args: Sequence[Any], budget: Budget) -> float:
        _arity(name, args, low=1)
        (value,) = args
        if not is_number(value):
            raise _bad(name, value)
        number = to_float(value)
        return number if not math.isfinite(number) else float(how(number))

    return rounding


def _round_half_away(value: float) -> float:
    whole = math.floor(abs(value))
    if abs(value) - whole >= 0.5:
        whole += 1
    return math.copysign(whole, value)


def _sum(args: Sequence[Any], budget: Budget) -> int | float:
    _arity("sum", args, low=1)
    items = _numbers("sum", args[0], budget)
    if all(isinstance(x, int) for x in items):
        return wrap_int64(sum(items))
    return math.fsum(to_float(x) for x in items)


def _mean(args: Sequence[Any], budget: Budget) -> float:
    _arity("mean", args, low=1)
    items = _numbers("mean", args[0], budget)
    if not items:
        return 0.0
    return math.fsum(to_float(x) for x in items) / len(items)


def _median(args: Sequence[Any], budget: Budget) -> float:
    _arity("median", args, low=1)
    items = sorted(to_float(x) for x in _numbers("median", args[0], budget))
    if not items:
        return 0.0
    middle = len(items) // 2
    if len(items) % 2:
        return items[middle]
    return (items[middle - 1] + items[middle]) / 2


# --- arrays and maps -------------------------------------------------------------------------


def _first(args: Sequence[Any], budget: Budget) -> Any:
    _arity("first", args, low=1)
    items = _array("first", args[0], budget)
    return items[0] if items else None


def _last(args: Sequence[Any], budget: Budget) -> Any:
    _arity("last", args, low=1)
    items = _array("last", args[0], budget)
    return items[-1] if items else None


def _take(args: Sequence[Any], budget: Budget) -> list[Any]:
    _arity("take", args, low=2)
    items = _array("take", args[0], budget)
    count = _int_arg("take", args[1])
    return list(items[: max(count, 0)])


def _reverse(args: Sequence[Any], budget: Budget) -> list[Any]:
    _arity("reverse", args, low=1)
    return list(reversed(_array("reverse", args[0], budget)))


def _sort(args: Sequence[Any], budget: Budget) -> list[Any]:
    _arity("sort", args, low=1, high=2)
    items = _array("sort", args[0], budget)
    order = _string("sort", args[1]) if len(args) == 2 else "asc"
    if order not in ("asc", "desc"):
        raise ExprRuntimeError(f'sort: unknown order "{order}" (use "asc" or "desc")')
    if not (all(is_number(x) for x in items) or all(isinstance(x, str) for x in items)):
        raise ExprRuntimeError("sort: the array must hold only numbers or only strings")
    budget.spend(len(items) * max(1, len(items).bit_length()))
    return sorted(items, reverse=order == "desc")


def _map_arg(name: str, value: object, budget: Budget) -> Mapping[Any, Any]:
    if not is_map(value):
        raise _bad(name, value)
    mapping: Mapping[Any, Any] = value  # type: ignore[assignment]
    budget.spend(len(mapping))
    return mapping


def _keys(args: Sequence[Any], budget: Budget) -> list[Any]:
    _arity("keys", args, low=1)
    return list(_map_arg("keys", args[0], budget).keys())


def _values(args: Sequence[Any], budget: Budget) -> list[Any]:
    _arity("values", args, low=1)
    return list(_map_arg("values", args[0], budget).values())


def _get(args: Sequence[Any], budget: Budget) -> Any:
    _arity("get", args, low=2)
    container, key = args
    if is_array(container) or isinstance(container, str):
        if not is_number(key):
            return None
        index = _int_arg("get", key)
        length = len(container)
        index = index + length if index < 0 else index
        return container[index] if 0 <= index < length else None
    if is_map(container):
        return container.get(key) if isinstance(key, str) else None
    return None


# --- strings ---------------------------------------------------------------------------------


def _join(args: Sequence[Any], budget: Budget) -> str:
    _arity("join", args, low=1, high=2)
    items = _array("join", args[0], budget)
    separator = _string("join", args[1]) if len(args) == 2 else ""
    if not all(isinstance(x, str) for x in items):
        raise ExprRuntimeError("join: the array must hold only strings")
    budget.string(sum(len(x) for x in items) + len(separator) * max(len(items) - 1, 0))
    return separator.join(items)


def _split(args: Sequence[Any], budget: Budget) -> list[str]:
    _arity("split", args, low=2, high=3)
    text = _string("split", args[0])
    separator = _string("split", args[1])
    limit = _int_arg("split", args[2]) if len(args) == 3 else -1
    budget.array(len(text) + 1)
    if limit == 0:
        return []
    if separator == "":
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return parts
    return text.split(separator, limit - 1 if limit > 0 else -1)


def _trim(args: Sequence[Any], budget: Budget) -> str:
    _arity("trim", args, low=1, high=2)
    text = _string("trim", args[0])
    return text.strip(_string("trim", args[1])) if len(args) == 2 else text.strip()


def _string_function(name: str, how: Callable[[str, str], Any]) -> Function:
    def function(args: Sequence[Any], budget: Budget) -> Any:
        _arity(name, args, low=2)
        text = _string(name, args[0])
        budget.spend(1 + len(text) // 64)
        return how(text, _string(name, args[1]))

    return function


def _case(name: str, how: Callable[[str], str]) -> Function:
    def function(args: Sequence[Any], budget: Budget) -> str:
        _arity(name, args, low=1)
        text = _string(name, args[0])
        budget.string(len(text) * 3)  # case mapping may grow a string up to threefold
        return how(text)

    return function


def _replace(args: Sequence[Any], budget: Budget) -> str:
    _arity("replace", args, low=3)
    text, old, new = (_string("replace", a) for a in args)
    count = len(text) + 1 if old == "" else text.count(old)
    budget.string(len(text) + count * max(len(new) - len(old), 0))
    return text.replace(old, new)


def _repeat(args: Sequence[Any], budget: Budget) -> str:
    _arity("repeat", args, low=2)
    text = _string("repeat", args[0])
    times = _int_arg("repeat", args[1])
    if times < 0:
        raise ExprRuntimeError("repeat: negative repeat count")
    budget.string(len(text) * times)
    return text * times


# --- Argo's helpers --------------------------------------------------------------------------


def _as_int(args: Sequence[Any], budget: Budget) -> int:
    _arity("asInt", args, low=1)
    (value,) = args
    if isinstance(value, int) and not isinstance(value, bool):
        return wrap_int64(value)
    if isinstance(value, float):
        return _float_to_int("asInt", value)
    if isinstance(value, str):
        return _parse_int("strconv.ParseInt", value)
    raise ExprRuntimeError(f"asInt() not supported on {type_name(value)}")


def _as_float(args: Sequence[Any], budget: Budget) -> float:
    _arity("asFloat", args, low=1)
    (value,) = args
    if is_number(value):
        return to_float(value)
    if isinstance(value, str):
        return _parse_float("strconv.ParseFloat", value)
    raise ExprRuntimeError(f"asFloat() not supported on {type_name(value)}")


def _float_test(name: str, test: Callable[[float], bool]) -> Function:
    def function(args: Sequence[Any], budget: Budget) -> bool:
        _arity(name, args, low=1)
        (value,) = args
        if isinstance(value, float):
            return test(value)
        if is_number(value):
            return False  # an int is never NaN or infinite
        raise ExprRuntimeError(f"{name}() expects a float64, not {type_name(value)}")

    return function


def _is_nil(args: Sequence[Any], budget: Budget) -> bool:
    _arity("isNil", args, low=1)
    return args[0] is None


def _default(args: Sequence[Any], budget: Budget) -> Any:
    _arity("default", args, low=2)
    value, fallback = args
    return fallback if value is None else value


FUNCTIONS: Mapping[str, Function] = MappingProxyType(
    {
        "len": _len,
        "abs": _abs,
        "int": _to_int,
        "float": _to_float,
        "string": _to_string,
        "type": _type,
        "max": _extreme("max", pick_larger=True),
        "min": _extreme("min", pick_larger=False),
        "ceil": _rounding("ceil", math.ceil),
        "floor": _rounding("floor", math.floor),
        "round": _rounding("round", _round_half_away),
        "sum": _sum,
        "mean": _mean,
        "median": _median,
        "first": _first,
        "last": _last,
        "take": _take,
        "reverse": _reverse,
        "sort": _sort,
        "keys": _keys,
        "values": _values,
        "get": _get,
        "join": _join,
        "split": _split,
        "trim": _trim,
        "trimPrefix": _string_function("trimPrefix", str.removeprefix),
        "trimSuffix": _string_function("trimSuffix", str.removesuffix),
        "hasPrefix": _string_function("hasPrefix", str.startswith),
        "hasSuffix": _string_function("hasSuffix", str.endswith),
        "indexOf": _string_function("indexOf", str.find),
        "lastIndexOf": _string_function("lastIndexOf", str.rfind),
        "upper": _case("upper", str.upper),
        "lower": _case("lower", str.lower),
        "replace": _replace,
        "repeat": _repeat,
        "asInt": _as_int,
        "asFloat": _as_float,
        "isNaN": _float_test("isNaN", math.isnan),
        "isInf": _float_test("isInf", math.isinf),
        "isNil": _is_nil,
        "default": _default,
    }
)
