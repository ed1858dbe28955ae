"""The ``matches`` operator: Python's ``re`` behind a static guard against runaway backtracking.

Go's RE2 (which expr-lang uses) runs in linear time; Python's ``re`` backtracks, so ``(a+)+$``
takes exponential time and even ``a*a*b`` cubic time on a long enough string. There is no
timeout here (a timeout would make verdicts depend on machine load); instead the pattern is
scanned before use and each match is allowed only where it is cheap by construction:

* the pattern is at most ``MAX_PATTERN_LENGTH`` characters and a repeat count at most 1000
  (RE2's own limit);
* constructs RE2 lacks are refused, which also removes Python's worst cases: backreferences,
  lookaround, atomic groups, possessive quantifiers, conditionals, comments, verbose mode;
* a group repeated without bound (``*``, ``+``, ``{n,}``) may not itself contain a quantifier
  or an alternation — the nested shape behind exponential backtracking;
* the rest is costed: with ``u`` quantifiers whose span grows with the subject and ``c`` binary
  choice points (``?``, small ranges, alternation), a search is bounded by about
  ``n ** (u + 1) * 2 ** c`` steps for a subject of ``n`` characters. The subject may be as long
  as keeps that under ``BACKTRACK_BUDGET`` (and never over ``MAX_SUBJECT_LENGTH``): ``.*a``
  accepts 3,162 characters, ``^\\d+\\.\\d+$`` 215, ``^\\d+\\.\\d+\\.\\d+$`` 56.

Anything refused raises ``ExprRuntimeError`` saying why. Go's RE2 and Python's ``re`` differ in
small ways (``\\z``, POSIX classes like ``[[:alpha:]]``, ``\\p{Greek}``); a pattern ``re``
rejects is a runtime error too.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass

from shiftd.decide.analysis.expr.errors import ExprRuntimeError

MAX_PATTERN_LENGTH = 256
MAX_SUBJECT_LENGTH = 10_000
MAX_REPEAT = 1000
BACKTRACK_BUDGET = 10**7
_MAX_GROUP_NESTING = 20
_COUNTED = re.compile(r"\{(\d+)(,(\d*))?\}")


@dataclass(frozen=True, slots=True)
class _Cost:
    unbounded: int = 0
    choices: int = 0

    def __add__(self, other: _Cost) -> _Cost:
        return _Cost(self.unbounded + other.unbounded, self.choices + other.choices)

    @property
    def variable(self) -> bool:
        return self.unbounded > 0 or self.choices > 0


@dataclass(frozen=True, slots=True)
class Guarded:
    """A compiled pattern and the longest subject it may be searched in."""

    compiled: re.Pattern[str]
    max_subject: int


class _Refused(Exception):
    pass


class _Scanner:
    """Walks the pattern's structure (not its meaning) to cost it; ``re`` does the real parse."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.nesting = 0

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.pattern[at] if at < len(self.pattern) else ""

    def alternation(self) -> _Cost:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        total = _Cost()
        for branch in branches:
            total = total + branch
        return total + _Cost(0, len(branches) - 1)

    def sequence(self) -> _Cost:
        total = _Cost()
        while self.peek() not in ("", "|", ")"):
            total = total + self.quantified(self.atom())
        return total

    def atom(self) -> _Cost:
        ch = self.peek()
        if ch == "(":
            return self.group()
        if ch == "[":
            self.skip_class()
            return _Cost()
        if ch == "\\":
            self.skip_escape()
            return _Cost()
        self.pos += 1
        return _Cost()

    def group(self) -> _Cost:
        self.pos += 1
        if self.peek() == "?":
            following = self.peek(1)
            if following in ("=", "!", ">", "(", "#") or (
                following == "<" and self.peek(2) in ("=", "!")
            ):
                raise _Refused("lookaround, atomic groups, conditionals, comments: unsupported")
            if following == "P" and self.peek(2) == "=":
                raise _Refused("backreferences are not supported")
            end = self.pos
            while end < len(self.pattern) and self.pattern[end] not in ":)>":
                end += 1
            if "x" in self.pattern[self.pos : end] and self.peek(1) not in ("P", "<"):
                raise _Refused("verbose mode is not supported")
        self.nesting += 1
        if self.nesting > _MAX_GROUP_NESTING:
            raise _Refused(f"groups are nested more than {_MAX_GROUP_NESTING} deep")
        inner = self.alternation()
        self.nesting -= 1
        if self.peek() == ")":
            self.pos += 1
        return inner

    def skip_class(self) -> None:
        self.pos += 1
        if self.peek() == "^":
            self.pos += 1
        if self.peek() == "]":
            self.pos += 1
        while self.peek() not in ("", "]"):
            if self.peek() == "\\":
                self.pos += 1
            self.pos += 1
        self.pos += 1

    def skip_escape(self) -> None:
        self.pos += 1
        ch = self.peek()
        if ch in "123456789" and ch != "":
            raise _Refused("backreferences are not supported")
        self.pos += 1
        if ch in ("p", "P", "x") and self.peek() == "{":
            while self.peek() not in ("", "}"):
                self.pos += 1
            self.pos += 1

    def quantified(self, atom: _Cost) -> _Cost:
        ch = self.peek()
        low: int
        high: int | None
        if ch in ("*", "+", "?"):
            self.pos += 1
            low, high = (0, None) if ch == "*" else (1, None) if ch == "+" else (0, 1)
        elif ch == "{" and (counted := _COUNTED.match(self.pattern, self.pos)):
            self.pos = counted.end()
            low = int(counted.group(1))
            if counted.group(2) is None:
                high = low
            elif counted.group(3):
                high = int(counted.group(3))
            else:
                high = None
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                raise _Refused(f"repeat counts above {MAX_REPEAT} are not supported")
        else:
            return atom
        if self.peek() == "+":
            raise _Refused("possessive quantifiers are not supported")
        if self.peek() == "?":
            self.pos += 1  # lazy: the same search space
        if high is None:
            if atom.variable:
                raise _Refused("a group repeated without bound may not hold a quantifier or '|'")
            return _Cost(1, 0)
        cost = _Cost(atom.unbounded * high, atom.choices * high)
        if high - low > 1:
            return cost + _Cost(1, 0)
        if high - low == 1:
            return cost + _Cost(0, 1)
        return cost


def _longest_subject(cost: _Cost) -> int:
    if 2**cost.choices > BACKTRACK_BUDGET:
        raise _Refused("the pattern has too many optional parts")
    room = BACKTRACK_BUDGET / 2**cost.choices
    longest = int(room ** (1 / (cost.unbounded + 1)))
    return min(MAX_SUBJECT_LENGTH, longest)


@functools.lru_cache(maxsize=256)
def guard(pattern: str) -> Guarded:
    """The compiled pattern and its subject limit, or ``ExprRuntimeError`` if it is refused."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ExprRuntimeError(f"regex is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        scanner = _Scanner(pattern)
        cost = scanner.alternation()
        while scanner.pos < len(pattern):  # an unbalanced ')': let re report it, cost the rest
            scanner.pos += 1
            cost = cost + scanner.alternation()
        longest = _longest_subject(cost)
    except _Refused as exc:
        raise ExprRuntimeError(f"regex {pattern!r} refused: {exc}") from None
    compiled = _compile(pattern)
    if isinstance(compiled, str):
        raise ExprRuntimeError(f"invalid regex {pattern!r}: {compiled}")
    return Guarded(compiled, longest)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | str:
    """The compiled pattern, or why it is refused (remembered: ``re`` warns only once)."""
    try:
        with warnings.catch_warnings():
            # Python warns where its set syntax may change ("possible set union"); such a
            # pattern means something else in Go's RE2, so it is refused, not guessed.
            warnings.simplefilter("error", FutureWarning)
            return re.compile(pattern)
    except (re.error, OverflowError, RecursionError, FutureWarning) as exc:
        return str(exc)


def matches(subject: str, pattern: str) -> bool:
    """Go's ``regexp.MatchString``: true if the pattern matches anywhere in the subject."""
    guarded = guard(pattern)
    if len(subject) > guarded.max_subject:
        raise ExprRuntimeError(
            f"matches: a subject of {len(subject)} characters is too long for regex {pattern!r} "
            f"(limit {guarded.max_subject})"
        )
    return guarded.compiled.search(subject) is not None
