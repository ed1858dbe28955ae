"""Pod-template and step hashes, computed the way Argo Rollouts computes them.

Argo hashes a template with FNV-1a (32 bit) over its JSON and spells the number with
Kubernetes' SafeEncodeString alphabet (no vowels, no look-alike digits), so names never form
words. Go's JSON field order cannot be reproduced from a dict, so shiftd hashes canonical JSON
(sorted keys); a ReplicaSet whose template equals the Rollout's is adopted whatever its hash,
exactly as Argo falls back to comparing templates.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from shiftd.common.podtemplate import semantic_equal
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL, Rollout

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def _fnv1a_32(data: bytes) -> int:
    value = _FNV32_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
    return value


class _FnvMemo:
    """FNV-1a values remembered by a 16-byte BLAKE2b digest of their data.

    Every reconcile hashes its Rollout's template and steps, and FNV-1a in Python costs about
    1 us per byte (a few ms per template), so values are remembered. Keyed by a digest, an
    entry costs ~150 bytes instead of the template's JSON, so the memo can hold every
    template of a large cluster (an lru_cache of 4096 keyed by the JSON thrashed beyond
    ~2,000 Rollouts); beyond ``size`` entries the oldest leaves first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: dict[bytes, int] = {}

    def __call__(self, data: bytes) -> int:
        digest = hashlib.blake2b(data, digest_size=16).digest()
        value = self._values.get(digest)
        if value is None:
            value = _fnv1a_32(data)
            if len(self._values) >= self._size:
                del self._values[next(iter(self._values))]
            self._values[digest] = value
        return value


fnv1a_32 = _FnvMemo(1 << 17)  # FNV-1a (32 bit), remembered


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
    label is ignored. Either may hold its spec as a digest (a cached ReplicaSet's template:
    ``shiftd.common.podtemplate.without_spec``)."""
    return semantic_equal(live, desired, ignore_labels=(POD_TEMPLATE_HASH_LABEL,))


def steps_hash(steps: tuple[dict[str, Any], ...]) -> str:
    """``status.currentStepHash``: changes when the steps change, which restarts them."""
    return safe_encode(str(fnv1a_32(canonical_json(list(steps)))))


def rollout_template_hash(rollout: Rollout) -> str:
    """The pod-template-hash of the Rollout's template (computed once at parse, if it was)."""
    return rollout.template_hash or pod_template_hash(rollout.template)


def rollout_steps_hash(rollout: Rollout) -> str:
    """The steps' hash (computed once at parse, if it was)."""
    return rollout.steps_hash or steps_hash(rollout.canary.raw_steps)
