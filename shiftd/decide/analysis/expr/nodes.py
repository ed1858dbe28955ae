"""The syntax tree of a condition: small frozen values the parser builds and the evaluator walks.

Every node records ``depth`` (the height of the subtree it roots) so the parser can refuse a
tree the evaluator could not walk without exhausting Python's stack. Sugar is gone by the time a
tree exists: ``.field`` inside a predicate is ``Member(Pointer(""), "field")``, ``x | f(a)`` is
``Call("f", (x, a))``, and ``a not in b`` is ``Binary("not in", a, b)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The value of a literal as it comes out of the source.
Scalar = None | bool | int | float | str


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes."""

    depth: int = field(default=1, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """``42``, ``0.5``, ``"text"``, ``true``, ``nil``."""

    value: Scalar


@dataclass(frozen=True, slots=True)
class ArrayLit(Node):
    """``[a, b, c]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    """``{key: value, "other key": value}``; keys are always strings."""

    items: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Var(Node):
    """A name looked up among the variables (``result``), or ``$env`` for all of them."""

    name: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    """Inside a predicate: ``#`` (name ``""``), ``#index`` or ``#acc``."""

    name: str


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``obj.key``, ``obj[key]``, and with ``optional`` set, ``obj?.key`` / ``obj?.[key]``."""

    obj: Node
    key: Node
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Chain(Node):
    """Marks the outermost link of a chain holding ``?.``: a nil met there makes it all nil."""

    inner: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Slice(Node):
    """``obj[start:end]``; a missing bound is ``None``."""

    obj: Node
    start: Node | None
    end: Node | None


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-x``, ``+x``, ``!x`` (``not x`` is spelt ``!`` here)."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary(Node):
    """Every infix operator; ``and``/``or`` are spelt ``&&``/``||`` and ``^`` is ``**``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditional(Node):
    """``cond ? then : otherwise``."""

    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``name(args...)``: a builtin or one of Argo's helpers, looked up when evaluated."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodCall(Node):
    """``obj.name(args...)``: parsed so the error is a runtime one, as in Argo; never callable."""

    obj: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Closure(Node):
    """``{ body }``: a predicate passed to ``all``, ``filter``, ``map``..."""

    body: Node
