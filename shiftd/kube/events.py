"""Kubernetes Events about the objects shiftd acts on (what ``kubectl describe`` shows).

``EventRecorder.record`` writes a core/v1 Event. Repeats of the same event (same object,
type, reason and message) are folded into the Event already written, by raising its
``count`` and ``lastTimestamp``, as client-go's recorder does. Events are best-effort: a
failure to write one is logged and otherwise ignored, never raised into the reconcile.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from shiftd.kube.client import JsonObject, PatchType
from shiftd.kube.errors import KubeError, NotFound
from shiftd.kube.resources import EVENT, ResourceKind

__all__ = ["EventRecorder", "EventType", "EventWriter"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
# The API server rejects longer messages on events.k8s.io; keep core/v1 ones within it too.
_MAX_MESSAGE = 1024


class EventWriter(Protocol):
    """The two calls the recorder makes; ``KubeClient`` provides them."""

    async def create(
        self, kind: ResourceKind, namespace: str | None, body: JsonObject
    ) -> JsonObject: ...

    async def patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: JsonObject | list[JsonObject],
        *,
        patch_type: PatchType,
        subresource: str | None = None,
    ) -> JsonObject: ...


@dataclass(slots=True)
class _Written:
    """An Event already in the API server, which a repeat raises the count of."""

    namespace: str
    name: str
    count: int


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventRecorder:
    """Writes Events as ``component``; remembers the last ``memory`` distinct ones to fold
    their repeats."""

    def __init__(
        self,
        client: EventWriter,
        component: str = "shiftd",
        *,
        instance: str = "",
        clock: Callable[[], datetime] = _utcnow,
        memory: int = 4096,
    ) -> None:
        self._client = client
        self._component = component
        self._instance = instance
        self._clock = clock
        self._memory = memory
        self._written: OrderedDict[tuple[str, ...], _Written] = OrderedDict()

    async def record(self, obj: JsonObject, *, type: EventType, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (a dict as the API returns it). Never raises
        ``KubeError``."""
        involved = _involved_object(obj)
        message = message[:_MAX_MESSAGE]
        key = (
            involved.get("uid", ""),
            involved["kind"],
            involved.get("namespace", ""),
            involved["name"],
            type,
            reason,
            message,
        )
        now = self._clock()
        try:
            if await self._fold_into_previous(key, now):
                return
            namespace = involved.get("namespace") or "default"
            name = f"{involved['name']}.{time.time_ns():x}"
            await self._client.create(
                EVENT,
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": involved,
                    "type": type,
                    "reason": reason,
                    "message": message,
                    "source": {"component": self._component},
                    "reportingComponent": self._component,
                    "reportingInstance": self._instance,
                    "firstTimestamp": _timestamp(now),
                    "lastTimestamp": _timestamp(now),
                    "count": 1,
                },
            )
        except KubeError as exc:
            logger.warning("could not record event %s on %s: %s", reason, involved["name"], exc)
            return
        self._remember(key, _Written(namespace=namespace, name=name, count=1))

    async def _fold_into_previous(self, key: tuple[str, ...], now: datetime) -> bool:
        """Count a repeat on the Event written before; False if there is none (any more)."""
        written = self._written.get(key)
        if written is None:
            return False
        count = written.count + 1
        try:
            await self._client.patch(
                EVENT,
                written.namespace,
                written.name,
                {"count": count, "lastTimestamp": _timestamp(now)},
                patch_type="merge",
            )
        except NotFound:  # expired (Events live about an hour): start a new one
            del self._written[key]
            return False
        written.count = count
        self._written.move_to_end(key)
        return True

    def _remember(self, key: tuple[str, ...], written: _Written) -> None:
        self._written[key] = written
        while len(self._written) > self._memory:
            self._written.popitem(last=False)


def _involved_object(obj: JsonObject) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    reference = {
        "apiVersion": str(obj.get("apiVersion") or ""),
        "kind": str(obj.get("kind") or ""),
        "name": str(metadata.get("name") or ""),
    }
    for field in ("namespace", "uid", "resourceVersion"):
        if metadata.get(field):
            reference[field] = str(metadata[field])
    return reference
