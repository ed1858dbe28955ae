"""The list+watch cache of one resource kind: how watches feed shiftd's in-memory view.

An ``Informer`` lists its kind (across all namespaces, or once per namespace it is given),
then watches from the list's resourceVersion and keeps the newest version of every object,
telling ``on_change(event_type, object)`` about each change. It never gives up:

* a watch that the server ends (its timeoutSeconds ran out) is reopened from the last
  resourceVersion seen, bookmarks included, so nothing made in between is missed;
* ``Gone`` (410: that version has been compacted away) relists, replaces the cache, and
  reports DELETED for objects that disappeared and ADDED/MODIFIED for the ones that changed;
* connection failures and API errors (the API server restarting) back off exponentially with
  jitter, capped at a few seconds, and try again, forever;
* once the API server could not be reached at all, it may have come back rebuilt or restored
  from a backup, so the first attempt after that relists rather than resumes; likewise when a
  watch reports versions older than the one it started from.

``on_restart()`` is called before each attempt to re-establish a watch after an error or a 410
(a watch that the server merely ended is reopened without counting).
Callbacks run inline in the informer's task and must not block or raise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import anyio
from anyio.abc import TaskStatus
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from shiftd.kube.client import JsonObject, WatchEvent
from shiftd.kube.errors import CannotConnect, ConnectionFailed, Gone, KubeError
from shiftd.kube.resources import ResourceKind

__all__ = ["Informer", "ListWatchClient", "Transform"]

logger = logging.getLogger(__name__)

ObjectList: TypeAlias = list[JsonObject]
ChangeHandler: TypeAlias = Callable[[str, JsonObject], None]
# (the object as the server sent it, the cached copy it replaces) -> the object to cache; it
# may change the first in place (it is ours), never the second (cached objects are shared)
Transform: TypeAlias = Callable[[JsonObject, JsonObject | None], JsonObject]
# A watch that ends this fast with no events counts as failed, so that it backs off.
_SHORT_WATCH = 1.0


class ListWatchClient(Protocol):
    """The two calls an informer needs; ``KubeClient`` provides them."""

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[ObjectList, str]: ...

    def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]: ...


class _HistoryRewound(KubeError):
    """The server sent a resourceVersion older than the one the watch started from."""


@dataclass
class _Scope:
    """One list+watch: a namespace, or ``None`` for all of them (or a cluster-scoped kind)."""

    namespace: str | None
    # The version to resume watching from; "" means the next attempt must list first.
    resource_version: str = ""
    # 410s in a row without an event in between; only the first relists without waiting.
    expired_in_a_row: int = 0
    # Cancelled when the namespace is no longer watched.
    stop: anyio.CancelScope = field(default_factory=anyio.CancelScope)


def _resource_version(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _is_older(candidate: str, cached: str) -> bool:
    """Whether ``candidate`` is certainly older than ``cached``.

    resourceVersions are opaque strings; they are compared only when both are integers (as
    etcd's are). Anything else is taken as new.
    """
    try:
        return int(candidate) < int(cached)
    except ValueError:
        return False


def _key(obj: JsonObject) -> tuple[str | None, str]:
    """Where an object sits in the cache. The name is interned: a dict keeps the key it was
    first given, and the cached object's own name is interned too (``share_strings``, or
    ``SharedParts.share`` in the daemon's caches), so the two are one string, not one each
    (60,000 names at 10,000 Rollouts)."""
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace"), intern_short(str(metadata.get("name") or ""))


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip_unread_fields(obj: JsonObject) -> JsonObject:
    """The default transform (as client-go's informer transforms): drop what a real API server
    adds to every object and the daemon never reads — ``metadata.managedFields`` (about 40 %
    of a Rollout's bytes) and kubectl's last-applied annotation (a second copy of the spec).
    The object is changed in place: it came from the server's answer and is ours."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            del annotations[LAST_APPLIED]
    return obj


_SHARED_STRING_MAX = 64


def intern_short(value: str) -> str:
    """The interpreter's interned copy of ``value`` if it is up to 64 characters long."""
    return sys.intern(value) if len(value) <= _SHARED_STRING_MAX else value


def share_strings(obj: JsonObject, *, skip: object = None) -> None:
    """Replace every string value of ``obj`` (at any depth, except inside ``skip``) up to 64
    characters by the interpreter's interned copy, in place. A parsed answer holds a new
    string for every value, and most values repeat across objects and versions (namespaces,
    names, labels, images, condition types, reasons, timestamps): in the benchmark's caches
    the strings took 9.7 KiB per Rollout, and 1.3 KiB once shared. Interned strings are freed
    with their last user."""
    stack: list[dict[str, Any] | list[Any]] = [obj]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str):
                node[key] = intern_short(value)  # type: ignore[index]
            elif isinstance(value, dict | list) and value is not skip:
                stack.append(value)


def _generation(obj: JsonObject) -> tuple[str, object] | None:
    metadata = obj.get("metadata") or {}
    generation = metadata.get("generation")
    return None if generation is None else (str(metadata.get("uid") or ""), generation)


def compact(obj: JsonObject, previous: JsonObject | None) -> JsonObject:
    """``obj`` (transformed) made to cost less before it is cached: its spec shared with the
    copy it replaces when unchanged, its strings shared (except in that spec: already done)."""
    spec = share_unchanged_spec(obj, previous).get("spec")
    shared = previous is not None and spec is not None and spec is previous.get("spec")
    share_strings(obj, skip=spec if shared else None)
    return obj


def _stripped_and_compact(obj: JsonObject, previous: JsonObject | None) -> JsonObject:
    """The default transform: ``strip_unread_fields``, then ``compact``."""
    return compact(strip_unread_fields(obj), previous)


def share_unchanged_spec(obj: JsonObject, previous: JsonObject | None) -> JsonObject:
    """Let ``obj`` hold the very ``spec`` of the copy it replaces when their (uid, generation)
    are equal: the API server raises ``metadata.generation`` with every change of the spec, so
    the two specs are equal and one copy is enough (a status write or a label change then
    costs no second spec in memory, and whoever parsed the previous spec keeps sharing it).
    Cached objects are never changed in place, so sharing is safe."""
    if previous is None or previous is obj:
        return obj
    spec, before = obj.get("spec"), previous.get("spec")
    if isinstance(spec, dict) and isinstance(before, dict) and spec is not before:
        generation = _generation(obj)
        if generation is not None and generation == _generation(previous):
            obj["spec"] = before
    return obj


class Informer:
    """Keeps an up-to-date cache of one kind. Create it inside the event loop; run ``run()``
    in a task group (``await tg.start(informer.run)`` returns once the cache is filled)."""

    def __init__(
        self,
        client: ListWatchClient,
        kind: ResourceKind,
        *,
        namespaces: Sequence[str] | None,
        on_change: ChangeHandler,
        on_restart: Callable[[], None] | None = None,
        label_selector: str | None = None,
        transform: Transform | None = None,
        watch_timeout: int = 240,
        min_backoff: float = 0.2,
        max_backoff: float = 6.0,
    ) -> None:
        """``namespaces=None`` watches all namespaces with one watch; a list watches each of
        them separately (ignored for cluster-scoped kinds). ``watch_timeout`` is the
        server-side timeoutSeconds after which a watch is reopened. Failures back off from
        ``min_backoff`` doubling up to ``max_backoff`` seconds, plus up to ``min_backoff``
        of jitter."""
        self._client = client
        self._kind = kind
        if namespaces is None or not kind.namespaced:
            self._scopes = [_Scope(None)]
        else:
            self._scopes = [_Scope(ns) for ns in dict.fromkeys(namespaces)]
        self._on_change = on_change
        self._on_restart = on_restart
        self._label_selector = label_selector
        self._transform = transform or _stripped_and_compact
        self._watch_timeout = watch_timeout
        self._backoff = wait_exponential(multiplier=min_backoff, max=max_backoff) + wait_random(
            0, min_backoff
        )
        # namespace (None for cluster-scoped objects) -> name -> newest object seen
        self._cache: dict[str | None, dict[str, JsonObject]] = {}
        self.synced = anyio.Event()
        self._watches: anyio.abc.TaskGroup | None = None

    @property
    def kind(self) -> ResourceKind:
        return self._kind

    @property
    def resource_versions(self) -> list[str]:
        """The version each watched scope's cache is at: its last list, event or bookmark
        ("" while it must list again). Tests use it to tell a lagging cache."""
        return [scope.resource_version for scope in self._scopes]

    def get(self, namespace: str | None, name: str) -> JsonObject | None:
        return self._cache.get(namespace, {}).get(name)

    def items(self, namespace: str | None = None) -> ObjectList:
        """Cached objects of one namespace, or (``None``) of all."""
        if namespace is not None:
            return list(self._cache.get(namespace, {}).values())
        return [obj for bucket in self._cache.values() for obj in bucket.values()]

    def holding(self, namespace: str | None, name: str, version: str) -> JsonObject | None:
        """The cached object if it is at exactly ``version`` (the answer to a write whose
        watch event came first: it need not be parsed, see ``KubeClient``)."""
        cached = self._cache.get(namespace, {}).get(name)
        if cached is not None and version and _resource_version(cached) == version:
            return cached
        return None

    def remember(self, obj: JsonObject) -> None:
        """Put an object a write just returned into the cache (write-through), so the next
        reconcile does not plan from a copy older than its own write. Older copies are
        ignored, and so is the very version already cached (the watch event often overtakes
        the write's answer: transforming and compacting it again would cost as much as the
        event did); the watch event for the same version later changes nothing."""
        namespace, name = _key(obj)
        bucket = self._cache.setdefault(namespace, {})
        cached = bucket.get(name)
        if cached is not None:
            version, known = _resource_version(obj), _resource_version(cached)
            if _is_older(version, known) or (version and version == known):
                return
        bucket[name] = self._transform(obj, cached)

    def forget(self, namespace: str | None, name: str) -> None:
        """Drop an object a delete just removed (the watch confirms it later)."""
        self._cache.get(namespace, {}).pop(name, None)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, report started (``synced`` is set), then watch until cancelled."""
        async with anyio.create_task_group() as initial:
            for scope in self._scopes:
                initial.start_soon(self._initial_list, scope)
        self.synced.set()
        task_status.started()
        async with anyio.create_task_group() as watches:
            self._watches = watches
            for scope in self._scopes:
                watches.start_soon(self._watch_forever, scope)

    async def set_namespaces(self, namespaces: Sequence[str] | None) -> None:
        """Watch other namespaces from now on (``None``: all), while running: a namespace
        added is listed (its objects reported ADDED) before its watch starts; one removed
        stops being watched and its objects are reported DELETED and dropped."""
        if not self._kind.namespaced or self._watches is None:
            return
        wanted = [None] if namespaces is None else list(dict.fromkeys(namespaces))
        current = {scope.namespace: scope for scope in self._scopes}
        added = [_Scope(namespace) for namespace in wanted if namespace not in current]
        for scope in added:
            await self._initial_list(scope)
        gone = [scope for namespace, scope in current.items() if namespace not in wanted]
        for scope in gone:
            scope.stop.cancel()
        self._scopes = [current.get(namespace) or next(
            scope for scope in added if scope.namespace == namespace) for namespace in wanted]
        if None not in wanted:
            for namespace in [ns for ns in self._cache if ns not in wanted]:
                for obj in self._cache.pop(namespace).values():
                    self._on_change("DELETED", obj)
        for scope in added:
            self._watches.start_soon(self._watch_forever, scope)

    # -- the loops -----------------------------------------------------------------------

    def _retrying(
        self, scope: _Scope, *, before_sleep: Callable[[RetryCallState], None]
    ) -> AsyncRetrying:
        def wait(retry_state: RetryCallState) -> float:
            # A 410 is routine (the watch fell behind compaction): relist right away, once.
            if scope.expired_in_a_row == 1 and isinstance(_failure(retry_state), Gone):
                return 0.0
            return float(self._backoff(retry_state))

        return AsyncRetrying(
            retry=retry_if_exception_type(KubeError),
            wait=wait,
            sleep=anyio.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    async def _initial_list(self, scope: _Scope) -> None:
        async for attempt in self._retrying(scope, before_sleep=self._log_list_failure):
            with attempt:
                await self._relist(scope)

    async def _watch_forever(self, scope: _Scope) -> None:
        with scope.stop:
            while True:
                async for attempt in self._retrying(scope, before_sleep=self._restarting):
                    with attempt:
                        await self._watch_once(scope)
                # The server closed the stream (timeoutSeconds): watch again from where we are.

    async def _watch_once(self, scope: _Scope) -> None:
        if not scope.resource_version:
            await self._relist(scope)
        since = scope.resource_version
        stream = self._client.watch(
            self._kind,
            scope.namespace,
            resource_version=since,
            label_selector=self._label_selector,
            timeout_seconds=self._watch_timeout,
        )
        started, delivered = anyio.current_time(), 0
        try:
            async with aclosing(stream) as events:
                async for event in events:
                    delivered += 1
                    scope.expired_in_a_row = 0
                    if _is_older(_resource_version(event.object), since):
                        raise _HistoryRewound(
                            f"watch from {since} sent {_resource_version(event.object)}"
                        )
                    self._apply(scope, event)
        except Gone:
            scope.resource_version = ""
            scope.expired_in_a_row += 1
            raise
        except (_HistoryRewound, CannotConnect):
            scope.resource_version = ""
            raise
        if not delivered and anyio.current_time() - started < _SHORT_WATCH:
            # A server that keeps closing watches at once would otherwise be hammered.
            raise ConnectionFailed("the watch was closed as soon as it was opened")

    def _log_list_failure(self, retry_state: RetryCallState) -> None:
        logger.warning(
            "listing %s failed (attempt %d), retrying: %s",
            self._kind.plural,
            retry_state.attempt_number,
            _failure(retry_state),
        )

    def _restarting(self, retry_state: RetryCallState) -> None:
        failure = _failure(retry_state)
        if isinstance(failure, Gone | _HistoryRewound):
            logger.info("watch of %s must relist: %s", self._kind.plural, failure)
        else:
            logger.warning("watch of %s failed, reconnecting: %s", self._kind.plural, failure)
        if self._on_restart is not None:
            self._on_restart()

    # -- cache updates -------------------------------------------------------------------

    def _apply(self, scope: _Scope, event: WatchEvent) -> None:
        obj = event.object
        version = _resource_version(obj)
        if version:
            scope.resource_version = version
        if event.type not in ("ADDED", "MODIFIED", "DELETED"):
            return  # BOOKMARK: only the version matters
        namespace, name = _key(obj)
        bucket = self._cache.setdefault(namespace, {})
        cached = bucket.get(name)
        if cached is not None and _is_older(version, _resource_version(cached)):
            return
        if cached is not None and event.type != "DELETED" and version \
                and version == _resource_version(cached):
            return  # already known: our own write, remembered when the server answered it
        if event.type == "DELETED":
            bucket.pop(name, None)
            if not bucket:
                del self._cache[namespace]
        else:
            obj = bucket[name] = self._transform(obj, cached)
        self._on_change(event.type, obj)

    async def _relist(self, scope: _Scope) -> None:
        """List the scope, make the cache exactly that, and report the differences."""
        objects, version = await self._client.list(
            self._kind, scope.namespace, label_selector=self._label_selector
        )
        fresh: dict[str | None, dict[str, JsonObject]] = {}
        for obj in objects:
            namespace, name = _key(obj)
            fresh.setdefault(namespace, {})[name] = self._transform(
                obj, self.get(namespace, name))
        if scope.namespace is None:
            previous, self._cache = self._cache, fresh
        else:
            previous = {scope.namespace: self._cache.pop(scope.namespace, {})}
            self._cache.update(fresh)
        scope.resource_version = version
        for namespace, bucket in previous.items():
            for name, obj in bucket.items():
                if name not in fresh.get(namespace, {}):
                    self._on_change("DELETED", obj)
        for namespace, bucket in fresh.items():
            for name, obj in bucket.items():
                before = previous.get(namespace, {}).get(name)
                if before is None:
                    self._on_change("ADDED", obj)
                elif _resource_version(before) != _resource_version(obj):
                    self._on_change("MODIFIED", obj)


def _failure(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None else None
