"""Kubernetes Events about the objects shiftd acts on (what ``kubectl describe`` shows).

``EventRecorder.record`` writes a core/v1 Event. Repeats of the same event (same object,
type, reason and message) are folded into the Event already written, by raising its
``count`` and ``lastTimestamp``, as client-go's recorder does. Events are best-effort: a
failure to write one is logged and otherwise ignored, never raised into the reconcile.

``EventBacklog`` holds the Events planned but not yet written, folded per object (an Event
planned again before it was written is written once, with its count), and writes them with
a bounded concurrency once the caller's ``may_start`` lets it (the daemon: when no reconcile
is waiting, or at the latest ``max_delay`` seconds after the Event was planned). Each Event
costs the same whatever the backlog's length: the backlog keeps a small reference to the
object, not the object.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import anyio

from shiftd.kube.client import JsonObject, PatchType
from shiftd.kube.errors import KubeError, NotFound
from shiftd.kube.resources import EVENT, ResourceKind

__all__ = ["EventBacklog", "EventRecorder", "EventType", "EventWriter", "PlannedEvent"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
# The API server rejects longer messages on events.k8s.io; keep core/v1 ones within it too.
_MAX_MESSAGE = 1024


class EventWriter(Protocol):
    """The two calls the recorder makes; ``KubeClient`` provides them."""

    async def create(
        self, kind: ResourceKind, namespace: str | None, body: JsonObject, *,
        parse_answer: bool = True,
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
        parse_answer: bool = True,
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

    async def record(self, obj: JsonObject, *, type: EventType, reason: str, message: str,
                     repeats: int = 1) -> None:
        """Record an Event about ``obj`` (a dict as the API returns it), seen ``repeats``
        times. Never raises ``KubeError``."""
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
            if await self._fold_into_previous(key, now, repeats):
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
                    "count": repeats,
                },
                parse_answer=False,  # written is all the recorder needs to know
            )
        except KubeError as exc:
            logger.warning("could not record event %s on %s: %s", reason, involved["name"], exc)
            return
        self._remember(key, _Written(namespace=namespace, name=name, count=repeats))

    async def _fold_into_previous(self, key: tuple[str, ...], now: datetime,
                                  repeats: int) -> bool:
        """Count repeats on the Event written before; False if there is none (any more)."""
        written = self._written.get(key)
        if written is None:
            return False
        count = written.count + repeats
        try:
            await self._client.patch(
                EVENT,
                written.namespace,
                written.name,
                {"count": count, "lastTimestamp": _timestamp(now)},
                patch_type="merge",
                parse_answer=False,
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


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    type: EventType
    reason: str
    message: str


@dataclass(slots=True)
class _Folded:
    """One object's Events waiting to be written: each with how often it was planned, in the
    order first planned; ``due`` is when they must go out even if the daemon stays busy."""

    about: JsonObject  # apiVersion, kind and the identifying metadata only
    due: float
    events: dict[PlannedEvent, int] = field(default_factory=dict)


class EventBacklog:
    """Events planned and not written yet, folded per object and written in the background.

    ``add`` never waits; ``drain`` (run by whoever owns the writing, e.g. a writer task)
    writes until the backlog is empty, ``concurrency`` objects at a time, one object's Events
    in the order planned. ``scheduled`` says a drain is running or asked for, so the caller
    starts one only when needed."""

    def __init__(self, recorder: EventRecorder, *, concurrency: int,
                 may_start: Callable[[], Awaitable[None]], max_delay: float,
                 log: Callable[[str, PlannedEvent], None] = lambda key, event: None) -> None:
        self._recorder = recorder
        self._concurrency = concurrency
        self._may_start = may_start
        self._max_delay = max_delay
        self._log = log
        self._pending: dict[str, _Folded] = {}
        self._writing: set[str] = set()
        self.scheduled = False

    def __len__(self) -> int:
        return sum(len(folded.events) for folded in self._pending.values())

    def add(self, key: str, obj: JsonObject, events: Sequence[PlannedEvent]) -> None:
        """Queue ``events`` about ``obj`` (``key`` names the object; repeats fold)."""
        folded = self._pending.get(key)
        if folded is None:
            folded = self._pending[key] = _Folded(
                about=_reference(obj), due=anyio.current_time() + self._max_delay)
        else:
            folded.about = _reference(obj)
        for event in events:
            folded.events[event] = folded.events.get(event, 0) + 1

    async def drain(self) -> None:
        """Write everything pending (and whatever is added meanwhile), then return."""
        try:
            while self._pending:
                async with anyio.create_task_group() as group:
                    for _ in range(self._concurrency):
                        group.start_soon(self._write_some)
        finally:
            self.scheduled = False

    async def _write_some(self) -> None:
        while True:
            key = next((key for key in self._pending if key not in self._writing), None)
            if key is None:  # nothing left, or only objects another task is writing
                return
            self._writing.add(key)
            try:
                # Let the reconciles that move traffic go first, but never past the deadline.
                with anyio.move_on_after(self._pending[key].due - anyio.current_time()):
                    await self._may_start()
                folded = self._pending.pop(key)  # with whatever was added while waiting
                for event, repeats in folded.events.items():
                    self._log(key, event)
                    await self._recorder.record(folded.about, type=event.type,
                                                reason=event.reason, message=event.message,
                                                repeats=repeats)
            finally:
                self._writing.discard(key)


def _reference(obj: JsonObject) -> JsonObject:
    """What an Event needs of its object (see ``_involved_object``), without the rest."""
    metadata = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {name: metadata[name] for name in
                         ("name", "namespace", "uid", "resourceVersion") if name in metadata}}


def _involved_object(obj: JsonObject) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    reference = {
        "apiVersion": str(obj.get("apiVersion") or ""),
        "kind": str(obj.get("kind") or ""),
        "name": str(metadata.get("name") or ""),
    }
    for name in ("namespace", "uid", "resourceVersion"):
        if metadata.get(name):
            reference[name] = str(metadata[name])
    return reference
