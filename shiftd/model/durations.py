"""Duration values as Argo Rollouts and shiftd's configuration write them, parsed to seconds.

Argo accepts a duration either as a number of seconds (``30``, or the string ``"30"``) or as a
Go duration string (``"20s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"``, ``"500ms"``). This module is
pure: the Rollout model and ``shiftd.config`` both call :func:`parse_duration`.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration"]

# Seconds per unit, as Go's time.ParseDuration spells the units.
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

# One "<number><unit>" term; a Go duration is one or more of them with no separators.
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)([a-zµμ]+)")
_SECONDS_ONLY = re.compile(r"\d+")


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` as a non-negative number of seconds.

    Integers (and strings of digits) are seconds, as in Argo's ``duration: 30``; strings are
    otherwise Go durations, one or more ``<number><unit>`` terms with units ns, us, ms, s, m,
    h. Raises ``ValueError`` naming the offending text for anything else, including negative
    values and booleans (YAML's ``yes`` is not a duration).
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected seconds or a string like '20s'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"invalid duration {value!r}: must be a non-negative number of seconds"
            )
        return float(value)
    if not isinstance(value, str):
        raise ValueError(
            f"invalid duration {value!r}: expected seconds or a string like '20s', "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    if _SECONDS_ONLY.fullmatch(text):
        return float(text)
    return _parse_go_duration(text, original=value)


def _parse_go_duration(text: str, *, original: str) -> float:
    if text.startswith("-"):
        raise ValueError(f"invalid duration {original!r}: must not be negative")
    text = text.removeprefix("+")
    if not text:
        raise ValueError(f"invalid duration {original!r}: empty")
    total = 0.0
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None:
            raise ValueError(
                f"invalid duration {original!r}: expected seconds or terms like '1h30m', '20s', "
                f"'500ms'"
            )
        number, unit = match.groups()
        if unit not in _UNIT_SECONDS:
            raise ValueError(
                f"invalid duration {original!r}: unknown unit {unit!r} (use ns, us, ms, s, m or h)"
            )
        total += float(number) * _UNIT_SECONDS[unit]
        position = match.end()
    return total
