"""The condition language, in tables: each expression with the value expr-lang gives it.

Expected values carry their type: ``1 / 2`` is the float ``0.5`` and ``2 + 3`` the int ``5``, as
in expr-lang, so every row checks the type as well as the value.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from shiftd.decide.analysis.expr import compile_condition, evaluate_condition

# What the SkyWalking provider hands over for seed 004's query: GraphQL ``data``, numbers as
# floats (Go decodes JSON numbers into float64).
SKYWALKING_RESULT = {
    "service_apdex": {
        "label": None,
        "values": {"values": [{"value": 9950.0}, {"value": 9990.0}, {"value": 10000.0}]},
    }
}
SKYWALKING_DEGRADED = {
    "service_apdex": {
        "label": None,
        "values": {"values": [{"value": 9950.0}, {"value": 9100.0}]},
    }
}
VARIABLES: dict[str, Any] = {
    "result": [0.95, 0.5],
    "n": 7,
    "f": 2.5,
    "s": "hello world",
    "empty": [],
    "items": [{"value": 1, "name": "a"}, {"value": 2, "name": "b"}, {"value": 3, "name": "c"}],
    "m": {"a": 1, "b": {"c": [10, 20, 30]}, "key with space": True},
    "none": None,
    "nan": math.nan,
    "inf": math.inf,
}


def _same(actual: Any, expected: Any) -> bool:
    """Equal and of the same type, all the way down (``1`` is not ``1.0``, ``True`` not ``1``)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same(actual[k], expected[k]) for k in expected
        )
    return bool(actual == expected)


LANGUAGE = [
    # literals
    ("42", 42),
    ("0x2A", 42),
    ("0o52", 42),
    ("0b101010", 42),
    ("1_000_000", 1_000_000),
    ("0.5", 0.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("2.5e-3", 0.0025),
    ("'single'", "single"),
    ('"double"', "double"),
    (r'"tab\tnew\nquote\"back\\"', 'tab\tnew\nquote"back\\'),
    (r"'it\'s'", "it's"),
    (r'"\u00e9\x41\101"', "éAA"),
    ("`raw \\n string`", "raw \\n string"),
    ("true", True),
    ("false", False),
    ("nil", None),
    ("[1, 'a', nil]", [1, "a", None]),
    ("[1, 2,]", [1, 2]),
    ("[]", []),
    ('{a: 1, "b c": [2]}', {"a": 1, "b c": [2]}),
    ("{}", {}),
    ("1 /* a comment */ + // another\n 1", 2),
    # arithmetic: int op int is int, anything with a float is float, / and ** always float
    ("2 + 3", 5),
    ("2 + 3.0", 5.0),
    ("7 - 10", -3),
    ("6 * 7", 42),
    ("6 * 0.5", 3.0),
    ("1 / 2", 0.5),
    ("4 / 2", 2.0),
    ("1 / 0", math.inf),
    ("-1 / 0", -math.inf),
    ("0 / 0", math.nan),
    ("7 % 3", 1),
    ("-7 % 3", -1),
    ("7 % -3", 1),
    ("2 ** 10", 1024.0),
    ("2 ^ 3", 8.0),
    ("2 ** 3 ** 2", 512.0),
    ("2 ** -1", 0.5),
    ("(-8) ** (1 / 3)", math.nan),
    ("10 ** 400", math.inf),
    ("9223372036854775807 + 1", -9223372036854775808),
    ("-n", -7),
    ("+f", 2.5),
    ("- -n", 7),
    # precedence, as expr-lang's operator table has it
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 2 - 3", 5),
    ("2 * 3 % 4", 2),
    ("-2 ** 2", -4.0),
    ("1 + 2 == 3", True),
    ("1 < 2 == true", True),
    ("!true == false", True),
    ("not true || true", True),
    ("true || false && false", True),
    ("(true || false) && false", False),
    ("1 + 1 in [2]", True),
    ("nil ?? 1 + 1", 2),
    ("none?.x ?? 'fallback'", "fallback"),
    # comparison
    ("1 == 1.0", True),
    ("1 != 1.0", False),
    ("1 < 1.5", True),
    ("2 <= 2", True),
    ("3 > 2.5", True),
    ("2 >= 3", False),
    ("'abc' < 'abd'", True),
    ("'b' >= 'a'", True),
    ("'1' == 1", False),
    ("nil == nil", True),
    ("none == nil", True),
    ("n == nil", False),
    ("true == 1", False),
    ("[1, 2] == [1.0, 2]", True),
    ("[1, 2] == [2, 1]", False),
    ("{a: 1} == {a: 1.0}", True),
    ("{a: 1} == {a: 2}", False),
    ("nan == nan", False),
    ("nan != nan", True),
    ("nan < 1", False),
    ("nan >= 1", False),
    ("inf > 1e308", True),
    # logic
    ("true && true", True),
    ("true and false", False),
    ("false || true", True),
    ("false or false", False),
    ("!false", True),
    ("not true", False),
    ("!!true", True),
    ("false && undefined_name", False),
    ("true || 1 / nil", True),
    # strings
    ("'foo' + 'bar'", "foobar"),
    ("s contains 'lo w'", True),
    ("s not contains 'xyz'", True),
    ("s startsWith 'hell'", True),
    ("s endsWith 'world'", True),
    ("s not startsWith 'world'", True),
    ("s matches '^h.*d$'", True),
    ("s matches '[0-9]'", False),
    ("s not matches '[0-9]'", True),
    ("'v1.2.3' matches '^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$'", True),
    # membership
    ("2 in [1, 2, 3]", True),
    ("2.0 in [1, 2, 3]", True),
    ("4 in [1, 2, 3]", False),
    ("4 not in [1, 2, 3]", True),
    ("'a' in m", True),
    ("'z' in m", False),
    ("'z' not in m", True),
    ("[1] in [[1], [2]]", True),
    ("1 in nil", False),
    ("0.95 in result", True),
    # ternary and nil coalescing
    ("true ? 1 : 2", 1),
    ("false ? 1 : 2", 2),
    ("n > 5 ? 'big' : 'small'", "big"),
    ("false ? 1 : true ? 2 : 3", 2),
    ("none ?? 5", 5),
    ("n ?? 5", 7),
    ("false ?? true", False),
    # indexing, slicing, member access
    ("result[0]", 0.95),
    ("result[-1]", 0.5),
    ("result[1.0]", 0.5),
    ("'abc'[1]", "b"),
    ("'abc'[-1]", "c"),
    ("[1, 2, 3, 4, 5][1:4]", [2, 3, 4]),
    ("[1, 2, 3, 4, 5][1:-1]", [2, 3, 4]),
    ("[1, 2, 3, 4, 5][:3]", [1, 2, 3]),
    ("[1, 2, 3, 4, 5][3:]", [4, 5]),
    ("[1, 2, 3, 4, 5][:]", [1, 2, 3, 4, 5]),
    ("[1, 2, 3][5:9]", []),
    ("[1, 2, 3][-9:2]", [1, 2]),
    ("[1, 2, 3][2:1]", []),
    ("'hello'[1:3]", "el"),
    ("m.a", 1),
    ("m['a']", 1),
    ('m["key with space"]', True),
    ("m.b.c[1]", 20),
    ("m.b['c'][-1]", 30),
    ("m.missing", None),
    ("m?.b?.c[0]", 10),
    ("none?.b.c", None),
    ("none?.[0]", None),
    ("m.missing?.deeper.still", None),
    ("items[1].name", "b"),
    ("{a: {b: 2}}.a.b", 2),
    ("$env.n", 7),
    ("'n' in $env", True),
    # range
    ("1..3", [1, 2, 3]),
    ("3..1", []),
    ("len(1..100)", 100),
    # predicates: # is the element, .field a member of it, braces optional
    ("all(result, {# > 0.4})", True),
    ("all(result, # > 0.9)", False),
    ("all(empty, {# > 1})", True),
    ("any(result, {# > 0.9})", True),
    ("any(empty, {# > 1})", False),
    ("none(result, {# > 0.99})", True),
    ("none(empty, {# > 1})", True),
    ("one(items, {.value > 2})", True),
    ("one(items, {.value > 1})", False),
    ("one(empty, {# > 1})", False),
    ("filter(items, {.value > 1})", [{"value": 2, "name": "b"}, {"value": 3, "name": "c"}]),
    ("filter(1..10, # % 3 == 0)", [3, 6, 9]),
    ("map(items, {.name})", ["a", "b", "c"]),
    ("map(items, .value * 10)", [10, 20, 30]),
    ("map(result, #index)", [0, 1]),
    ("count(items, {.value >= 2})", 2),
    ("count(empty, {true})", 0),
    ("sum(items, {.value})", 6),
    ("find(items, {.value > 1}).name", "b"),
    ("find(items, {.value > 9})", None),
    ("findIndex([1, 2, 3, 4], # > 2)", 2),
    ("findIndex([1, 2], # > 2)", -1),
    ("findLast([1, 2, 3, 4], # > 2)", 4),
    ("findLastIndex([1, 2, 3, 4], # > 2)", 3),
    ("reduce(1..4, #acc + #)", 10),
    ("reduce(1..4, #acc + #, 10)", 20),
    ("reduce(['a', 'b'], #acc + #, '')", "ab"),
    ("all(map(items, {.value}), {# > 0})", True),
    ("any(items, {any(1..3, {# == 2})})", True),
    ("map([[1, 2], [3]], {len(#)})", [2, 1]),
    ("filter(items, .name in ['a', 'c']) | map(.value)", [1, 3]),
    # builtins
    ("len(result)", 2),
    ("len('héllo')", 5),
    ("len(m)", 3),
    ("len(empty)", 0),
    ("abs(-3)", 3),
    ("abs(-2.5)", 2.5),
    ("int(2.9)", 2),
    ("int(-2.9)", -2),
    ("int('42')", 42),
    ("float(2)", 2.0),
    ("float('2.5')", 2.5),
    ("string(42)", "42"),
    ("string(2.5)", "2.5"),
    ("string(1e6)", "1e+06"),
    ("string(123456.0)", "123456"),
    ("string(0.00001)", "1e-05"),
    ("string(true)", "true"),
    ("string(nil)", "<nil>"),
    ("string([1, 'a', nil])", "[1 a <nil>]"),
    ("string({b: 1, a: [true]})", "map[a:[true] b:1]"),
    ("type(1)", "int"),
    ("type(1.5)", "float"),
    ("type('s')", "string"),
    ("type(nil)", "nil"),
    ("type([])", "array"),
    ("type({})", "map"),
    ("type(true)", "bool"),
    ("max(1, 5, 3)", 5),
    ("max(1, 2.5)", 2.5),
    ("max([4, 9, 2])", 9),
    ("min(4, 2.5, 3)", 2.5),
    ("ceil(1.2)", 2.0),
    ("floor(-1.2)", -2.0),
    ("round(2.5)", 3.0),
    ("round(-2.5)", -3.0),
    ("round(0.49999999999999994)", 0.0),
    ("sum([1, 2, 3])", 6),
    ("sum([1, 2.5])", 3.5),
    ("sum([])", 0),
    ("mean([1, 2, 3, 4])", 2.5),
    ("median([3, 1, 2])", 2.0),
    ("median([4, 1, 3, 2])", 2.5),
    ("first(result)", 0.95),
    ("first(empty)", None),
    ("last(result)", 0.5),
    ("take([1, 2, 3], 2)", [1, 2]),
    ("take([1, 2, 3], 9)", [1, 2, 3]),
    ("reverse([1, 2, 3])", [3, 2, 1]),
    ("sort([3, 1, 2])", [1, 2, 3]),
    ("sort(['b', 'a'], 'desc')", ["b", "a"]),
    ("keys({a: 1, b: 2})", ["a", "b"]),
    ("values({a: 1, b: 2})", [1, 2]),
    ("get([1, 2, 3], 1)", 2),
    ("get([1, 2, 3], 9)", None),
    ("get(m, 'a')", 1),
    ("get(m, 'zz')", None),
    ("join(['a', 'b', 'c'], ',')", "a,b,c"),
    ("join(['a', 'b'])", "ab"),
    ("split('a,b,c', ',')", ["a", "b", "c"]),
    ("split('a,b,c', ',', 2)", ["a", "b,c"]),
    ("split('abc', '')", ["a", "b", "c"]),
    ("trim('  x  ')", "x"),
    ("trim('__x__', '_')", "x"),
    ("trimPrefix('HelloWorld', 'Hello')", "World"),
    ("trimSuffix('HelloWorld', 'World')", "Hello"),
    ("upper('abc')", "ABC"),
    ("lower('ABC')", "abc"),
    ("replace('Hello World', 'World', 'There')", "Hello There"),
    ("repeat('ab', 3)", "ababab"),
    ("indexOf('apple pie', 'pie')", 6),
    ("lastIndexOf('apple pie apple', 'apple')", 10),
    ("hasPrefix('HelloWorld', 'Hello')", True),
    ("hasSuffix('HelloWorld', 'World')", True),
    ("s | upper() | split(' ')", ["HELLO", "WORLD"]),
    # Argo's helpers
    ("asInt('42')", 42),
    ("asInt('-7')", -7),
    ("asInt(42)", 42),
    ("asInt(1.9)", 1),
    ("asFloat('1.5')", 1.5),
    ("asFloat('1e3')", 1000.0),
    ("asFloat(2)", 2.0),
    ("asFloat('NaN') != asFloat('NaN')", True),
    ("isNaN(nan)", True),
    ("isNaN(1.5)", False),
    ("isNaN(1)", False),
    ("isInf(inf)", True),
    ("isInf(-inf)", True),
    ("isInf(1e308)", False),
    ("isNil(none)", True),
    ("isNil(0)", False),
    ("isNil(empty)", False),
    ("default(none, 3)", 3),
    ("default(n, 3)", 7),
    ("default(m.missing, 'x')", "x"),
]


@pytest.mark.parametrize(("source", "expected"), LANGUAGE, ids=[row[0] for row in LANGUAGE])
def test_an_expression_has_the_value_expr_lang_gives_it(source: str, expected: Any) -> None:
    actual = compile_condition(source).evaluate(VARIABLES)
    assert _same(actual, expected), f"{source!r} gave {actual!r}, expected {expected!r}"


# Conditions from the seeds' templates (verbatim) and from Argo Rollouts' analysis docs.
CONDITIONS = [
    ("result[0] > 0.90", [0.95], True),
    ("result[0] > 0.90", [0.90], False),
    ("len(result) == 0 || result[0] > 0.90", [], True),
    ("len(result) == 0 || result[0] > 0.90", [0.91], True),
    ("len(result) == 0 || result[0] > 0.90", [0.2], False),
    (
        "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
        SKYWALKING_RESULT,
        True,
    ),
    (
        "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
        SKYWALKING_DEGRADED,
        False,
    ),
    (
        "all(result.service_apdex.values.values, {# > 1})",
        {"service_apdex": {"label": None, "values": {"values": [2.0, 2.0]}}},
        True,
    ),
    ("result[0] >= 0.95", [0.96], True),
    ("result[0] >= 0.95 && result[0] <= 1", [1.01], False),
    ("result == true", True, True),
    ("result == false", True, False),
    ("result == 'true'", "true", True),
    ("result > 1", 5.0, True),
    ("2 in result", [2.0, 2.0], True),
    ("asInt(result) >= 1", "3", True),
    ("asInt(result) == 1", "1", True),
    ("asInt(result) == 1", 1, True),
    ("asInt(result) == 1", 1.123, True),
    ("asFloat(result) == 1.1", "1.1", True),
    ("asFloat(result) >= 1.1", "1.1", True),
    ("asFloat(result) <= 1.1", "1.1", True),
    ("asFloat(result) == 1.1", 1.1, True),
    ("asFloat(result) == 1", 1, True),
    ("isNaN(result) || result >= 0.95", math.nan, True),
    ("!isNaN(result) && result >= 0.95", math.nan, False),
    ("isInf(result)", math.inf, True),
    ("isNil(result)", None, True),
    ("default(result, 0) > 10", None, False),
    ("default(result, 0) > 10", 11.0, True),
    ("default(result, 0) < 0.05", None, True),
    ("result.successRate >= 0.95", {"successRate": 0.97}, True),
    ("result.data.ok == true", {"data": {"ok": True}}, True),
    ("result.status == 'OK'", {"status": "OK"}, True),
    ("all(result[0].Values, {# <= 0.01})", [{"Values": [0.001, 0.005]}], True),
    ("result[0] < 1", [0.5], True),
]


@pytest.mark.parametrize(("source", "result", "expected"), CONDITIONS)
def test_a_template_condition_decides_as_argo_would(
    source: str, result: Any, expected: bool
) -> None:
    assert evaluate_condition(source, result) is expected


def test_the_example_templates_conditions_all_compile() -> None:
    seeds = [
        "result[0] > 0.90",
        "len(result) == 0 || result[0] > 0.90",
        "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
    ]
    for source in seeds:
        assert compile_condition(source).source == source


def test_compiling_the_same_source_twice_reuses_the_first_condition() -> None:
    assert compile_condition("result > 1") is compile_condition("result > 1")


def test_a_condition_leaves_its_inputs_untouched() -> None:
    result = {"xs": [3, 1, 2], "m": {"a": 1}}
    compile_condition("sort(result.xs) == [1, 2, 3] && reverse(result.xs)[0] == 2").evaluate(
        {"result": result}
    )
    compile_condition("map(result.xs, # * 2)").evaluate({"result": result})
    assert result == {"xs": [3, 1, 2], "m": {"a": 1}}
