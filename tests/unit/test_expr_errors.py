"""How conditions fail: syntax errors with a position, runtime errors with a message, and limits."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from shiftd.decide.analysis.expr import (
    ExprRuntimeError,
    ExprSyntaxError,
    compile_condition,
    evaluate_condition,
)
from shiftd.decide.analysis.expr.regex import guard

SYNTAX_ERRORS = [
    ("result[0] >", 1, 12, "unexpected end of input"),
    ("", 1, 1, "unexpected end of input"),
    ("(1 + 2", 1, 7, "unexpected end of input"),
    ("a b", 1, 3, "unexpected token 'b'"),
    ("1 @ 2", 1, 3, "unexpected character '@'"),
    ("result[0] > 0.9 &&\n  && true", 2, 3, "unexpected token '&&'"),
    ("'unterminated", 1, 1, "unexpected character"),
    (r"'\q'", 1, 1, "invalid escape sequence"),
    ("99999999999999999999", 1, 1, "out of range"),
    ("1e999", 1, 1, "out of range"),
    ("{a: 1, # }", 1, 8, "unexpected token '#'"),
    ("a *\n !b", 2, 2, "unexpected token '!'"),
    ("[1, 2", 1, 6, "unexpected end of input"),
    ("x ? 1", 1, 6, "unexpected end of input"),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), SYNTAX_ERRORS)
def test_a_syntax_error_names_its_line_and_column(
    source: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        compile_condition(source)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message in caught.value.message
    assert f"(line {line}, column {column})" in str(caught.value)


def test_a_source_over_the_length_limit_is_refused() -> None:
    with pytest.raises(ExprSyntaxError, match="longer than 10000 characters"):
        compile_condition("1" + " " * 10_000)


@pytest.mark.parametrize(
    "source",
    ["-" * 200 + "1", "1" + " + 1" * 150, "!" * 150 + "true", "[" * 150 + "]" * 150],
)
def test_a_tree_nested_too_deep_is_refused_when_compiled(source: str) -> None:
    with pytest.raises(ExprSyntaxError, match="nested more than 100 levels"):
        compile_condition(source)


def test_redundant_parentheses_do_not_count_as_nesting() -> None:
    assert compile_condition("(" * 3000 + "1" + ")" * 3000).evaluate({}) == 1


RUNTIME_ERRORS: list[tuple[str, Any, str]] = [
    ("unknown_name > 1", None, "unknown name unknown_name"),
    ("nosuch(result)", None, "unknown func nosuch"),
    ("result[5]", [1, 2], "index out of range: 5 (array length is 2)"),
    ("result[-3]", [1, 2], "index out of range: -3 (array length is 2)"),
    ("result['a']", [1, 2], "invalid index (type string)"),
    ("result.a", [1, 2], "invalid index (type string)"),
    ("result.a", None, "cannot fetch a from <nil>"),
    ("result.a.b", {"a": None}, "cannot fetch b from <nil>"),
    ("result[0]", 5.0, "cannot fetch 0 from float64"),
    ("result[1:2]", 5.0, "cannot slice float64"),
    ("result > 1", "2", "invalid operation: string > int"),
    ("result + 1", "2", "invalid operation: string + int"),
    ("result * 2", "ab", "invalid operation: string * int"),
    ("result - 1", None, "invalid operation: <nil> - int"),
    ("result % 2", 5.5, "invalid operation: float64 % int"),
    ("result % 0", 5, "integer divide by zero"),
    ("-result", "x", "invalid operation: - string"),
    ("!result", 1, "operand of ! must be bool, not int"),
    ("result && true", 1.0, "left operand of && must be bool, not float64"),
    ("true && result", "yes", "right operand of && must be bool, not string"),
    ("result ? 1 : 2", None, "condition of ?: must be bool, not <nil>"),
    ("1 in result", 5, 'operator "in" not defined on int'),
    ("1 in result", {"a": 1}, "cannot use int as a key of map"),
    ("result contains 'a'", ["a"], "invalid operation: []interface {} contains string"),
    ("result matches 1", "a", "invalid operation: string matches int"),
    ("len(result)", 5, "invalid argument for len (type int)"),
    ("len(result)", None, "invalid argument for len (type <nil>)"),
    ("len()", None, "not enough arguments to call len"),
    ("len(1, 2)", None, "too many arguments to call len"),
    ("all(result, {# > 1})", None, "builtin all takes an array, not <nil>"),
    ("all(result, {# > 1})", {"a": 1}, "builtin all takes an array, not map"),
    ("all(result, {#})", [1], "predicate of all must return bool, not int"),
    ("filter(result)", [1], "not enough arguments to call filter"),
    ("# > 1", None, "cannot use pointer accessor outside predicate"),
    (".value > 1", None, "cannot use pointer accessor outside predicate"),
    ("map(result, #acc)", [1], "unknown pointer #acc"),
    ("{# > 1}", None, "can only be a predicate argument"),
    ("result.Name() == 'hi'", True, "cannot call method Name on bool"),
    ("asInt(result)", "1.1", 'strconv.ParseInt: parsing "1.1": invalid syntax'),
    ("asInt(result)", "notint", "invalid syntax"),
    ("asInt(result)", " 1", "invalid syntax"),
    ("asInt(result)", "99999999999999999999", "value out of range"),
    ("asInt(result)", math.nan, "cannot convert nan to int"),
    ("asInt(result)", True, "asInt() not supported on bool"),
    ("asInt(result)", None, "asInt() not supported on <nil>"),
    ("asFloat(result)", "NotANum", 'strconv.ParseFloat: parsing "NotANum": invalid syntax'),
    ("asFloat(result)", "1_0", "invalid syntax"),
    ("asFloat(result)", "1e999", "value out of range"),
    ("asFloat(result)", [1], "asFloat() not supported on []interface {}"),
    ("isNaN(result)", "NaN", "isNaN() expects a float64, not string"),
    ("isInf(result)", None, "isInf() expects a float64, not <nil>"),
    ("int(result)", "x", "strconv.Atoi"),
    ("sort(result)", [1, "a"], "only numbers or only strings"),
    ("join(result)", [1], "only strings"),
    ("repeat('x', -1)", None, "negative repeat count"),
    ("reduce(result, #acc + #)", [], "reduce of empty array"),
    ("max()", None, "not enough arguments to call max"),
    ("result matches '(a+)+$'", "aaa", "refused: a group repeated without bound"),
    ("result matches '(a)\\\\1'", "aa", "backreferences are not supported"),
    ("result matches '(?=a)'", "a", "lookaround"),
    ("result matches '['", "a", "invalid regex"),
]


@pytest.mark.parametrize(("source", "result", "message"), RUNTIME_ERRORS)
def test_a_runtime_error_says_what_went_wrong(source: str, result: Any, message: str) -> None:
    with pytest.raises(ExprRuntimeError) as caught:
        compile_condition(source).evaluate({"result": result})
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("source", "result", "type_name"),
    [
        ("1", None, "int"),
        ("result", 0.5, "float64"),
        ("result", None, "<nil>"),
        ("'x'", None, "string"),
        ("result", [True], "[]interface {}"),
    ],
)
def test_a_condition_that_is_not_bool_is_an_error_as_in_argo(
    source: str, result: Any, type_name: str
) -> None:
    expected = "^" + re.escape(f"expected bool, but got {type_name}")
    with pytest.raises(ExprRuntimeError, match=expected):
        evaluate_condition(source, result)


@pytest.mark.parametrize(
    "source",
    [
        "all(1..300, {all(1..300, {true})})",
        "reduce(1..40000, #acc + 1, 0) > 0",
        "len(filter(1..30000, # > 0)) > 0 && len(map(1..30000, #)) > 0",
        "len(1..99999) + len(1..99999) > 0",
        "reduce(1..10000, #acc + 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', '') == ''",
    ],
)
def test_runaway_work_stops_at_the_step_budget(source: str) -> None:
    with pytest.raises(ExprRuntimeError, match="more than 100000 steps"):
        evaluate_condition(source, None)


def test_the_step_budget_can_be_lowered_per_evaluation() -> None:
    condition = compile_condition("all(result, {# > 0})")
    assert condition.evaluate({"result": [1] * 10}, max_steps=1_000) is True
    with pytest.raises(ExprRuntimeError, match="more than 100 steps"):
        condition.evaluate({"result": [1] * 100}, max_steps=100)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("len(1..1000000) > 0", "array would be longer than 100000 elements"),
        ("repeat('x', 1000000) == ''", "string would be longer than 100000 characters"),
        ("len(replace(repeat('x', 1000), 'x', repeat('y', 1000))) > 0", "string would be longer"),
        ("string(1..60000) == ''", "string would be longer than 100000 characters"),
    ],
)
def test_created_strings_and_arrays_are_capped(source: str, message: str) -> None:
    with pytest.raises(ExprRuntimeError, match=message):
        evaluate_condition(source, None)


def test_ints_wrap_around_like_go_int64_rather_than_growing() -> None:
    assert compile_condition("9223372036854775807 * 2").evaluate({}) == -2
    assert compile_condition("reduce(1..200, #acc * 3, 1)").evaluate({}) < 2**63


def test_a_value_nested_too_deep_to_compare_is_a_runtime_error() -> None:
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(ExprRuntimeError, match="nested too deeply"):
        compile_condition("result == result").evaluate({"result": deep}, max_steps=10**9)


def test_member_access_never_reads_python_attributes() -> None:
    class Opaque:
        secret = "attribute"

        def method(self) -> str:
            return "called"

    for source in ["result.secret", "result['secret']", "result.__class__", "result.method()"]:
        with pytest.raises(ExprRuntimeError):
            compile_condition(source).evaluate({"result": Opaque()})
    assert compile_condition("result.__class__").evaluate({"result": {}}) is None
    assert compile_condition("result.keys").evaluate({"result": {"a": 1}}) is None


@pytest.mark.parametrize(
    ("pattern", "limit"),
    [("^https?://", 10_000), (".*a", 3162), ("^\\d+\\.\\d+$", 215), ("^\\d+\\.\\d+\\.\\d+$", 56)],
)
def test_a_regex_may_search_only_as_long_a_subject_as_its_shape_makes_cheap(
    pattern: str, limit: int
) -> None:
    assert guard(pattern).max_subject == limit


def test_a_subject_too_long_for_its_regex_is_an_error_not_a_stall() -> None:
    source = "result matches 'a*a*a*b'"
    assert evaluate_condition(source, "a" * 50) is False
    with pytest.raises(ExprRuntimeError, match="too long for regex"):
        evaluate_condition(source, "a" * 5_000)
