"""Pod-template and step hashes, computed the way Argo Rollouts computes them.

Argo hashes a template with FNV-1a (32 bit) over its JSON and spells the number with
Kubernetes' SafeEncodeString alphabet (no vowels, no look-alike digits), so names never form
words. Go's JSON field order cannot be reproduced from a dict, so shiftd hashes canonical JSON
(sorted keys); a ReplicaSet whose template equals the Rollout's is adopted whatever its hash,
exactly as Argo falls back to comparing templates.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from shiftd.common.podtemplate import semantic_form
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


@functools.lru_cache(maxsize=4096)
def fnv1a_32(data: bytes) -> int:
    """FNV-1a (32 bit); cached, since every reconcile hashes the same templates and steps."""
    value = _FNV32_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Kubernetes' rand.SafeEncodeString."""
    return "".join(_SAFE_ALPHABET[ord(char) % len(_SAFE_ALPHABET)] for char in text)


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def template_without_hash(template: dict[str, Any]) -> dict[str, Any]:
    """The template with the ``rollouts-pod-template-hash`` label removed (for comparisons)."""
    metadata = dict(template.get("metadata") or {})
    labels = dict(metadata.get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    metadata["labels"] = labels
    return {**template, "metadata": metadata}


def pod_template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """The ``rollouts-pod-template-hash`` of a pod template."""
    data = canonical_json(template_without_hash(template))
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(str(fnv1a_32(data)))


def templates_equal(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Argo's ``PodTemplateEqualIgnoreHash``: a ReplicaSet's template (as the API server
    stores it, defaults filled in) equals a Rollout's (a custom resource's, without them) when
    they are semantically equal once the server's defaults are applied to both and the hash
    label is ignored."""
    ignored = (POD_TEMPLATE_HASH_LABEL,)
    same: bool = semantic_form(live, ignore_labels=ignored) == semantic_form(
        desired, ignore_labels=ignored)
    return same


def steps_hash(steps: tuple[dict[str, Any], ...]) -> str:
    """``status.currentStepHash``: changes when the steps change, which restarts them."""
    return safe_encode(str(fnv1a_32(canonical_json(list(steps)))))
