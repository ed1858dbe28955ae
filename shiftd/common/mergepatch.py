"""RFC 7386 JSON merge patch, applied as the Kubernetes API server applies it.

The one implementation: the API emulator applies ``application/merge-patch+json`` with it, and
``shiftctl plan``'s in-memory world applies the planner's patches with it. Pure; imports
nothing of shiftd.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied: objects merge key by key, ``null`` deletes a key,
    anything else (lists included) replaces. Neither argument is changed; the parts of
    ``patch`` that land in the result are copies."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
