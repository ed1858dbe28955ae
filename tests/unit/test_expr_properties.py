"""Properties: whatever the source and whatever the result, only our two errors ever come out.

Arbitrary text, soups of the grammar's own tokens and grammatical expressions are compiled and
evaluated against arbitrary JSON-like results. Compiling either succeeds or raises
``ExprSyntaxError``; evaluating either returns or raises ``ExprRuntimeError``; nothing hangs
(hypothesis' deadline) and nothing reaches Python's attributes or builtins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiftd.decide.analysis.expr import (
    Condition,
    ExprRuntimeError,
    ExprSyntaxError,
    compile_condition,
    evaluate_condition,
)

PROPERTY = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def _words(text: str) -> list[str]:
    return text.split()


TOKENS = [
    *_words("0 1 2 -1 0.5 1e3 .5 0x1F 9223372036854775807 'a' \"b\" `c` '\\n' true false nil"),
    *_words("result x $env # #index #acc .value .a __class__ __import__"),
    *_words("+ - * / % ** ^ == != < <= > >= && || ! and or not in"),
    *_words("matches contains startsWith endsWith .. ?? ? : ?. . ( ) [ ] { } , |"),
    *_words("len all any none one filter map count sum reduce find asInt asFloat isNaN isInf"),
    *_words("isNil default string int float max sort split repeat replace keys first upper abs"),
]

NAMES = st.sampled_from(["result", "x", "#", "#index", ".value", "result.a", "result[0]"])
LEAVES = st.one_of(
    NAMES,
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(alphabet="ab.*+?()[]^$\\|", max_size=8).map(repr),
    st.sampled_from(["true", "false", "nil", "[]", "{}", "[1, 2.5, 'a']", "{a: 1}"]),
)
BINARY = st.sampled_from(
    [*_words("+ - * / % ** == != < <= > >= && || in ?? .. contains startsWith matches"), "not in"]
)
UNARY = st.sampled_from(["-", "!", "not ", "+"])
FUNCTIONS = st.sampled_from(
    _words("len abs int float string asInt asFloat isNaN isNil first sum max upper sort keys")
    + _words("type round trim reverse")
)
PREDICATES = st.sampled_from(["all", "any", "none", "one", "filter", "map", "count", "find"])


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, BINARY, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(UNARY, inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]}[{t[1]}:{t[2]}]"),
        st.tuples(inner, st.sampled_from(["a", "value", "__class__"])).map(
            lambda t: f"{t[0]}?.{t[1]}"
        ),
        st.tuples(FUNCTIONS, inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(PREDICATES, inner, inner).map(lambda t: f"{t[0]}({t[1]}, {{{t[2]}}})"),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(inner, inner).map(lambda t: f"{{k: {t[0]}, 'j': {t[1]}}}"),
        st.tuples(inner, inner).map(lambda t: f"default({t[0]}, {t[1]})"),
    )


EXPRESSIONS = st.recursive(LEAVES, _grow, max_leaves=12)


def _compile(source: str) -> Condition | None:
    try:
        return compile_condition(source)
    except ExprSyntaxError as exc:
        assert exc.line >= 1
        assert exc.column >= 1
        return None


def _evaluate(condition: Condition, result: Any) -> None:
    try:
        condition.evaluate({"result": result, "x": [1, 2, 3]})
    except ExprRuntimeError as exc:
        assert exc.message


@PROPERTY
@given(source=st.text(max_size=200))
def test_arbitrary_text_compiles_or_is_a_syntax_error(source: str) -> None:
    _compile(source)


@PROPERTY
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=25), spaced=st.booleans(), result=JSON)
def test_a_soup_of_grammar_tokens_compiles_and_evaluates_or_fails_with_our_errors(
    tokens: list[str], spaced: bool, result: Any
) -> None:
    condition = _compile((" " if spaced else "").join(tokens))
    if condition is not None:
        _evaluate(condition, result)


@PROPERTY
@given(source=EXPRESSIONS, result=JSON)
def test_any_grammatical_expression_evaluates_or_fails_with_a_runtime_error(
    source: str, result: Any
) -> None:
    condition = _compile(source)
    if condition is not None:
        _evaluate(condition, result)


@PROPERTY
@given(source=EXPRESSIONS, result=JSON)
def test_a_condition_is_a_bool_or_a_runtime_error(source: str, result: Any) -> None:
    try:
        verdict = evaluate_condition(source, result)
    except (ExprSyntaxError, ExprRuntimeError):
        return
    assert isinstance(verdict, bool)


ESCAPES = [
    "result.__class__",
    "result.__class__.__mro__",
    '"".__class__.__mro__[1].__subclasses__()',
    "__import__('os').system('true')",
    "result.__dict__",
    "result.__globals__",
    "().__class__",
    "[].__class__.__base__",
    "len.__globals__",
    "$env.__class__",
    "result['__class__']",
    "map(result, {#.__class__})",
    "getattr(result, '__class__')",
    "eval('1')",
    "exec('x = 1')",
    "open('/etc/passwd')",
    "compile('1', 'f', 'eval')",
    "type(result).__name__",
    "string.__doc__",
]


@pytest.mark.parametrize("source", ESCAPES)
@pytest.mark.parametrize("result", [{}, [], "text", 1.5, None, {"__class__": "just a key"}])
def test_python_internals_are_out_of_reach(source: str, result: Any) -> None:
    condition = _compile(source)
    if condition is None:
        return
    try:
        value = condition.evaluate({"result": result})
    except ExprRuntimeError:
        return
    # A missing key is nil and a key that happens to be called __class__ is just data: nothing
    # but plain data ever comes back, never a type, a function or a module.
    assert _is_plain_data(value)


def _is_plain_data(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_is_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_data(v) for k, v in value.items())
    return False


@PROPERTY
@given(
    pattern=st.text(alphabet="ab.*+?{}0123,()[]^$\\|dws", max_size=24),
    subject=st.text(alphabet="ab01 \n", max_size=3_000),
)
def test_matches_answers_or_refuses_quickly_whatever_the_pattern(
    pattern: str, subject: str
) -> None:
    try:
        verdict = evaluate_condition("result[0] matches result[1]", [subject, pattern])
    except ExprRuntimeError:
        return
    assert isinstance(verdict, bool)
