"""Watch streams: ``{"type", "object"}`` JSON lines over chunked HTTP, as a kube-apiserver sends.

``serve_watch`` answers one watch request: the initial events (every object as ADDED, or the
history after a resourceVersion), then each change as it is committed, filtered by the
watch's namespace and selectors (objects entering or leaving a selection become ADDED or
DELETED), with BOOKMARK events when allowed, until ``timeoutSeconds``. A resourceVersion older
than the retained history gets the ERROR event with a 410 ``Expired`` Status. A ``WatchPlan``
from the fault injector may end the stream early (cleanly, or cut in the middle of an event),
expire a resume or withhold bookmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from aiohttp import web

from shiftd.sim.errors import bad_request, expired
from shiftd.sim.faults import WatchPlan
from shiftd.sim.kinds import ResourceType
from shiftd.sim.selectors import Predicate
from shiftd.sim.store import Change, Expired, Store, Watcher

Obj = dict[str, Any]
_TRUE = frozenset({"true", "1"})


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """What one watch follows, and how its objects are rendered."""

    store: Store
    rtype: ResourceType
    version: str
    namespace: str | None
    predicate: Predicate
    render: Callable[[Obj], Obj]
    bookmark_interval: float
    faults: WatchPlan | None = None


class _StreamEnded(Exception):
    """The fault plan's last event was written (``cut``: half of the next one too)."""

    def __init__(self, *, cut: bool) -> None:
        super().__init__(cut)
        self.cut = cut


async def serve_watch(request: web.Request, target: WatchTarget) -> web.StreamResponse:
    query = request.query
    raw_version = query.get("resourceVersion", "")
    since: int | None = None
    if raw_version not in ("", "0"):
        try:
            since = int(raw_version)
        except ValueError as error:
            raise bad_request(f"invalid resource version: {raw_version!r}") from error
    try:
        timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else math.inf
    except ValueError as error:
        raise bad_request("invalid timeoutSeconds") from error
    plan = target.faults or WatchPlan()
    bookmarks = query.get("allowWatchBookmarks", "").lower() in _TRUE and plan.bookmarks

    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        if plan.expire and since is not None:
            plan.report("watch-expired")
            raise Expired(target.store.resource_version)
        initial, watcher = target.store.subscribe(target.rtype, since)
    except Expired as gone:
        await response.prepare(request)
        await response.write(_line("ERROR", expired(raw_version, gone.oldest)))
        return response
    cut = False
    try:
        stream = _WatchStream(target, response, plan)
        await response.prepare(request)
        await stream.send(initial)
        with anyio.move_on_after(timeout):
            await stream.follow(watcher, bookmarks=bookmarks)
    except ConnectionError:
        pass  # the client went away
    except _StreamEnded as ended:
        cut = ended.cut
        plan.report("watch-cut" if cut else "watch-closed")
    finally:
        target.store.unsubscribe(watcher)
    if (watcher.broken or cut) and request.transport is not None:
        request.transport.close()  # break the stream mid-flight, like a dying server
    return response


def _line(event: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": event, "object": obj}) + b"\n"


def _drain(watcher: Watcher, batch: list[Change]) -> list[Change]:
    """Take every change already queued, without waiting."""
    while True:
        try:
            batch.append(watcher.changes.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return batch


class _WatchStream:
    """Filters changes for one watch and writes them as JSON lines."""

    def __init__(self, target: WatchTarget, response: web.StreamResponse,
                 plan: WatchPlan) -> None:
        self._target = target
        self._namespace = target.namespace
        self._predicate = target.predicate
        self._response = response
        self._plan = plan
        self._left = plan.events  # events still to send before the plan ends the stream

    def _visible(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self._namespace is not None and obj["metadata"].get("namespace") != self._namespace:
            return False
        return self._predicate(obj)

    def _event(self, change: Change) -> str | None:
        """The event type this watch sees, given its selectors (objects may enter or leave)."""
        now = self._visible(change.obj)
        if change.type == "DELETED":
            return "DELETED" if now else None
        before = change.type == "MODIFIED" and self._visible(change.previous)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None

    def _encode(self, changes: list[Change]) -> list[bytes]:
        lines = []
        for change in changes:
            event = self._event(change)
            if event is not None:
                lines.append(_line(event, self._target.render(change.obj)))
        return lines

    async def send(self, changes: list[Change], tail: bytes = b"") -> None:
        """Write the events of ``changes`` (then ``tail``), as far as the fault plan lets."""
        lines = self._encode(changes)
        if self._left is not None and len(lines) > self._left:
            data = b"".join(lines[:self._left])
            if self._plan.cut:
                data += lines[self._left][:len(lines[self._left]) // 2]
            await self._response.write(data)
            raise _StreamEnded(cut=self._plan.cut)
        if self._left is not None:
            self._left -= len(lines)
        data = b"".join(lines) + tail
        if data:
            await self._response.write(data)

    async def follow(self, watcher: Watcher, *, bookmarks: bool) -> None:
        interval = self._target.bookmark_interval if bookmarks else math.inf
        while True:
            with anyio.move_on_after(interval) as idle:
                try:
                    first = await watcher.changes.receive()
                except anyio.EndOfStream:
                    return
            if idle.cancelled_caught:
                # Drain and read the version with no await in between: every change up to
                # that version is then written before the bookmark, so resuming from it is safe.
                await self.send(_drain(watcher, []), self._bookmark())
            else:
                await self.send(_drain(watcher, [first]))

    def _bookmark(self) -> bytes:
        rtype, version = self._target.rtype, self._target.version
        return _line("BOOKMARK", {
            "kind": rtype.kind,
            "apiVersion": rtype.api_version(version),
            "metadata": {"resourceVersion": str(self._target.store.resource_version)},
        })


__all__ = ["WatchTarget", "serve_watch"]
