"""The revision hash a Canary records in ``status.lastAppliedSpec``.

Flagger hashes the target's pod template with Go's ``spew`` printer over the typed Go struct
and FNV-32a, written as the decimal of the sum passed through ``SafeEncodeString``. That
printout of Go structs cannot be reproduced from JSON, so shiftd hashes the template's
canonical JSON with FNV-64a instead, zero-padded to 20 digits before the same encoding. The
two are told apart by length: Flagger's is at most 10 characters, shiftd's always 20, so a
Canary taken over from Flagger is recognised (``written_by_flagger``) and adopted without
starting an analysis.
"""

from __future__ import annotations

from typing import Any

import orjson

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
HASH_LENGTH = 20
_FLAGGER_HASH_MAX_LENGTH = 10  # the decimal of a uint32


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped into an alphabet without vowels."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def fnv64a(data: bytes) -> int:
    value = _FNV64_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV64_PRIME) & _MASK64
    return value


def template_hash(template: Any) -> str:
    """shiftd's hash of a pod template (any JSON value): stable across key order."""
    canonical = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    return safe_encode(f"{fnv64a(canonical):0{HASH_LENGTH}d}")


def written_by_flagger(recorded: str) -> bool:
    """Whether a ``lastAppliedSpec`` is Flagger's own hash (not one shiftd wrote)."""
    return 0 < len(recorded) <= _FLAGGER_HASH_MAX_LENGTH
