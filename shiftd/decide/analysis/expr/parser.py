"""Source text to syntax tree: expr-lang's grammar for lark's LALR parser, and the tree builder.

Operator precedence follows expr-lang (``parser/operator``), loosest first::

    |  (pipe)   ?: (ternary)   or ||   and &&
    == != < <= > >= in matches contains startsWith endsWith (and their ``not`` forms)
    ..   + -   not !   * / %   unary - +   ** ^ (right-assoc)   ??   postfix . ?. [] [:] ()

The tree is built while parsing (a transformer handed to the LALR parser), so no step recurses
over the input: a source nested thousands deep is refused by the depth check, not by a
``RecursionError``. Where precedence climbing would accept an odd mix that a grammar cannot
(``a * !b``, ``x ?? !y``), this grammar reports a syntax error; each such mix is a type error
in expr-lang anyway except ``x ?? !y``.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from shiftd.decide.analysis.expr.errors import ExprSyntaxError
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

#: Longest source accepted; conditions in templates are a line or two.
MAX_SOURCE_LENGTH = 10_000
#: Tallest tree accepted. The evaluator recurses once or twice per level, so this keeps it far
#: from Python's recursion limit whatever the caller's own stack depth.
MAX_DEPTH = 100

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_GRAMMAR = r"""
?start: expr

?expr: ternary
     | expr "|" NAME "(" [args] ")"                  -> pipe

?ternary: or_expr
        | or_expr "?" ternary ":" ternary            -> conditional

?or_expr: and_expr
        | or_expr (OR_OP | OR_KW) and_expr           -> binary

?and_expr: cmp
         | and_expr (AND_OP | AND_KW) cmp            -> binary

?cmp: range_expr
    | cmp (EQ | NE | LT | LE | GT | GE) range_expr                             -> binary
    | cmp (IN | MATCHES | CONTAINS | STARTSWITH | ENDSWITH) range_expr         -> binary
    | cmp NOT (IN | MATCHES | CONTAINS | STARTSWITH | ENDSWITH) range_expr     -> negated_binary

?range_expr: add
           | add RANGE add                           -> binary

?add: not_expr
    | add (PLUS | MINUS) not_expr                    -> binary

?not_expr: mul
         | (BANG | NOT) not_expr                     -> unary

?mul: neg
    | mul (STAR | SLASH | PERCENT) neg               -> binary

?neg: pow
    | (MINUS | PLUS) neg                             -> unary

?pow: coalesce
    | coalesce (POW | CARET) neg                     -> binary

?coalesce: chain
         | coalesce QQ coalesce_rhs                  -> binary

?coalesce_rhs: chain
             | (MINUS | PLUS) coalesce_rhs           -> unary

chain: postfix

?postfix: primary
        | postfix "." NAME                           -> member
        | postfix QDOT NAME                          -> opt_member
        | postfix "[" expr "]"                       -> index
        | postfix QDOT "[" expr "]"                  -> opt_index
        | postfix "[" [expr] ":" [expr] "]"          -> slice
        | postfix "." NAME "(" [args] ")"            -> method_call

?primary: literal
        | NAME                                       -> var
        | NAME "(" [args] ")"                        -> call
        | POINTER                                    -> pointer
        | "." NAME                                   -> pointer_member
        | "(" expr ")"
        | "[" [args] "]"                             -> array
        | "{" [pairs] "}"                            -> map
        | "{" expr "}"                               -> closure

args: expr ("," expr)* [","]
pairs: pair ("," pair)* [","]
pair: (NAME | STRING) ":" expr

literal: INT | FLOAT | STRING | TRUE | FALSE | NIL

OR_OP: "||"
OR_KW: "or"
AND_OP: "&&"
AND_KW: "and"
EQ: "=="
NE: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
IN: "in"
NOT: "not"
MATCHES: "matches"
CONTAINS: "contains"
STARTSWITH: "startsWith"
ENDSWITH: "endsWith"
RANGE: ".."
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"
BANG: "!"
POW: "**"
CARET: "^"
QQ: "??"
QDOT: "?."
TRUE: "true"
FALSE: "false"
NIL: "nil"

NAME: /[A-Za-z_$][A-Za-z0-9_$]*/
POINTER: /#[A-Za-z0-9_]*/
FLOAT: /([0-9][0-9_]*)?\.[0-9][0-9_]*([eE][+-]?[0-9]+)?/
     | /[0-9][0-9_]*[eE][+-]?[0-9]+/
INT: /0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*/
STRING: /"(?:[^"\\]|\\[\s\S])*"/
      | /'(?:[^'\\]|\\[\s\S])*'/
      | /`[^`]*`/

COMMENT: /\/\/[^\n]*/
       | /\/\*[\s\S]*?\*\//
WS: /[ \t\r\n\f\v]+/
%ignore WS
%ignore COMMENT
"""

# Keyword spellings of operators map to the symbol the evaluator knows.
_SPELLING = {"or": "||", "and": "&&", "not": "!", "^": "**"}

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[\s\S])")


def _fail(message: str, token: Token | None) -> ExprSyntaxError:
    line = token.line if token is not None and token.line is not None else 1
    column = token.column if token is not None and token.column is not None else 1
    return ExprSyntaxError(message, line=line, column=column)


def _unquote(token: Token) -> str:
    text = str(token)
    body = text[1:-1]
    if text[0] == "`":
        return body

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "xuU" and len(code) > 1:
            point = int(code[1:], 16)
        elif code[0] in "01234567" and len(code) == 3:
            point = int(code, 8)
        else:
            raise _fail(f"invalid escape sequence \\{code}", token)
        if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
            raise _fail(f"invalid Unicode code point in \\{code}", token)
        return chr(point)

    return _ESCAPE.sub(replace, body)


def _int(token: Token) -> int:
    text = str(token)
    try:
        value = int(text, 0)
    except ValueError:
        # Go reads a leading zero as octal ("012" is 10); Python refuses it.
        digits = text.replace("_", "")
        if not digits.isdigit() or not all(c in "01234567" for c in digits):
            raise _fail(f"invalid integer literal {text}", token) from None
        value = int(digits, 8)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _fail(f"integer literal {text} is out of range", token)
    return value


def _float(token: Token) -> float:
    text = str(token)
    try:
        value = float(text)
    except ValueError:
        raise _fail(f"invalid float literal {text}", token) from None
    if math.isinf(value):
        raise _fail(f"float literal {text} is out of range", token)
    return value


def _height(*children: Node | None) -> int:
    return 1 + max((c.depth for c in children if c is not None), default=0)


def _first_token(children: list[Any]) -> Token | None:
    for child in children:
        if isinstance(child, Token):
            return child
    return None


class _Builder(Transformer[Token, Node]):
    """Builds nodes as the parser reduces rules; every method sees already-built children."""

    def _checked(self, node: Node, children: list[Any]) -> Node:
        if node.depth > MAX_DEPTH:
            message = f"expression is nested more than {MAX_DEPTH} levels deep"
            raise _fail(message, _first_token(children))
        return node

    def literal(self, children: list[Token]) -> Node:
        (token,) = children
        value: Any
        match token.type:
            case "INT":
                value = _int(token)
            case "FLOAT":
                value = _float(token)
            case "STRING":
                value = _unquote(token)
            case "TRUE":
                value = True
            case "FALSE":
                value = False
            case _:
                value = None
        return Literal(value)

    def var(self, children: list[Token]) -> Node:
        return Var(str(children[0]))

    def pointer(self, children: list[Token]) -> Node:
        return Pointer(str(children[0])[1:])

    def pointer_member(self, children: list[Token]) -> Node:
        return Member(Pointer(""), Literal(str(children[0])), depth=2)

    def args(self, children: list[Any]) -> tuple[Node, ...]:
        return tuple(c for c in children if c is not None)

    def pairs(self, children: list[Any]) -> tuple[tuple[str, Node], ...]:
        return tuple(c for c in children if c is not None)

    def pair(self, children: list[Any]) -> tuple[str, Node]:
        key, value = children
        return (_unquote(key) if key.type == "STRING" else str(key), value)

    def array(self, children: list[Any]) -> Node:
        items: tuple[Node, ...] = children[0] or ()
        return self._checked(ArrayLit(items, depth=_height(*items)), children)

    def map(self, children: list[Any]) -> Node:
        items: tuple[tuple[str, Node], ...] = children[0] or ()
        return self._checked(MapLit(items, depth=_height(*(v for _, v in items))), children)

    def closure(self, children: list[Any]) -> Node:
        (body,) = children
        return self._checked(Closure(body, depth=_height(body)), children)

    def call(self, children: list[Any]) -> Node:
        name, args = children
        args = args or ()
        return self._checked(Call(str(name), args, depth=_height(*args)), children)

    def pipe(self, children: list[Any]) -> Node:
        left, name, args = children
        args = (left, *(args or ()))
        return self._checked(Call(str(name), args, depth=_height(*args)), children)

    def method_call(self, children: list[Any]) -> Node:
        obj, name, args = children
        args = args or ()
        node = MethodCall(obj=obj, name=str(name), args=args, depth=_height(obj, *args))
        return self._checked(node, children)

    def member(self, children: list[Any]) -> Node:
        obj, name = children
        return self._checked(Member(obj, Literal(str(name)), depth=_height(obj) + 1), children)

    def opt_member(self, children: list[Any]) -> Node:
        obj, _, name = children
        node = Member(obj, Literal(str(name)), optional=True, depth=_height(obj) + 1)
        return self._checked(node, children)

    def index(self, children: list[Any]) -> Node:
        obj, key = children
        return self._checked(Member(obj, key, depth=_height(obj, key)), children)

    def opt_index(self, children: list[Any]) -> Node:
        obj, _, key = children
        return self._checked(Member(obj, key, optional=True, depth=_height(obj, key)), children)

    def slice(self, children: list[Any]) -> Node:
        obj, start, end = children
        node = Slice(obj=obj, start=start, end=end, depth=_height(obj, start, end))
        return self._checked(node, children)

    def chain(self, children: list[Any]) -> Node:
        (inner,) = children
        if _has_optional_link(inner):
            return self._checked(Chain(inner, depth=_height(inner)), children)
        return inner  # type: ignore[no-any-return]

    def unary(self, children: list[Any]) -> Node:
        op, operand = children
        node = Unary(_SPELLING.get(str(op), str(op)), operand, depth=_height(operand))
        return self._checked(node, children)

    def binary(self, children: list[Any]) -> Node:
        left, op, right = children
        node = Binary(
            op=_SPELLING.get(str(op), str(op)), left=left, right=right, depth=_height(left, right)
        )
        return self._checked(node, children)

    def negated_binary(self, children: list[Any]) -> Node:
        left, _, op, right = children
        node = Binary(op=f"not {op}", left=left, right=right, depth=_height(left, right))
        return self._checked(node, children)

    def conditional(self, children: list[Any]) -> Node:
        cond, then, otherwise = children
        node = Conditional(
            cond=cond, then=then, otherwise=otherwise, depth=_height(cond, then, otherwise)
        )
        return self._checked(node, children)


def _has_optional_link(node: Node) -> bool:
    while True:
        match node:
            case Member(obj=obj, optional=optional):
                if optional:
                    return True
                node = obj
            case Slice(obj=obj) | MethodCall(obj=obj):
                node = obj
            case _:
                return False


@functools.cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR,
        parser="lalr",
        lexer="contextual",
        transformer=_Builder(),
        maybe_placeholders=True,
    )


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    return f"token {str(token)!r}"


def _end_position(source: str) -> tuple[int, int]:
    lines = source.split("\n")
    return len(lines), len(lines[-1]) + 1


def parse(source: str) -> Node:
    """The syntax tree of ``source``; raises ``ExprSyntaxError`` with the line and column."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExprSyntaxError(
            f"expression is longer than {MAX_SOURCE_LENGTH} characters", line=1, column=1
        )
    try:
        tree = _lark().parse(source)
    except UnexpectedCharacters as exc:
        raise ExprSyntaxError(
            f"unexpected character {exc.char!r}", line=exc.line, column=exc.column
        ) from None
    except UnexpectedToken as exc:
        line, column = exc.line, exc.column
        if exc.token.type == "$END" or line < 1:
            line, column = _end_position(source)
        message = f"unexpected {_describe(exc.token)}"
        raise ExprSyntaxError(message, line=line, column=column) from None
    except UnexpectedEOF:
        line, column = _end_position(source)
        raise ExprSyntaxError("unexpected end of input", line=line, column=column) from None
    except UnexpectedInput as exc:  # any other lark parse failure
        line, column = max(exc.line, 1), max(exc.column, 1)
        raise ExprSyntaxError(str(exc).splitlines()[0], line=line, column=column) from None
    if not isinstance(tree, Node):  # pragma: no cover - the builder returns nodes for every rule
        raise ExprSyntaxError("could not build a syntax tree", line=1, column=1)
    return tree
