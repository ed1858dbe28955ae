"""Keys of the engine: every queued, timed, cached or indexed thing is a ``(kind, namespace,
name)`` triple, so objects of different kinds with the same name never collide."""

from __future__ import annotations

from typing import Any, NamedTuple


class ObjectKey(NamedTuple):
    """One object the engine reconciles; ``kind`` is the Kubernetes kind (``Rollout``)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        """``namespace/name``, as logs and Events name an object."""
        return f"{self.namespace}/{self.name}"


def key_of(kind: str, obj: dict[str, Any]) -> ObjectKey:
    """The key of a Kubernetes object of ``kind``."""
    metadata = obj.get("metadata") or {}
    return ObjectKey(kind, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
