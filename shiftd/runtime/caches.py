"""The watch task's caches: one informer per registered kind, and the indexes controllers ask for.

Controllers register the kinds they read (``watch``): whether the daemon can run without it
(``optional``: readiness does not wait for it, and a kind the API server does not serve is
simply absent), whether its objects are indexed by their controlling owner, a handler that
maps a change to the keys it concerns, and what of an object it reads (``keep``: the cache
holds only that, unless another registration of the kind wants more). Two indexes are generic:

* the owner index: objects of a kind by the uid of their controlling owner, plus the orphans
  of each namespace (ReplicaSets a Rollout may adopt, the AnalysisRuns it controls);
* the reference index: which keys last read which objects (``set_references``), so a change
  to a Service, a VirtualService or a template wakes every key that depends on it.

Every change is turned into ``ObjectKey`` values and handed to ``enqueue``; nothing here
writes to the API server.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.kube.errors import KubeError
from shiftd.kube.informer import Informer, ListWatchClient, Transform, strip_unread_fields
from shiftd.kube.resources import ResourceKind
from shiftd.runtime.keys import ObjectKey
from shiftd.runtime.sharing import SharedParts

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Handler = Callable[[str, JsonObject], Iterable[ObjectKey]]
Keep = Callable[[JsonObject], JsonObject]  # the part of an object a controller reads
Ref = tuple[ResourceKind, str, str]  # kind, namespace ("" when cluster-scoped), name
Where = tuple[str, str]  # namespace, name

UNSERVED_RECHECK_SECONDS = 60.0


def controller_uid(obj: JsonObject) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def controller_key(obj: JsonObject) -> ObjectKey | None:
    """The key of the object's controlling owner (``None`` for an orphan)."""
    metadata = obj.get("metadata") or {}
    for ref in metadata.get("ownerReferences") or []:
        if ref.get("controller"):
            return ObjectKey(str(ref.get("kind")), str(metadata.get("namespace", "")),
                             str(ref.get("name")))
    return None


def resource_version(obj: JsonObject | None) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", "")) if obj else "-"


def _where(obj: JsonObject) -> Where:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name"))


@dataclass
class _OwnerIndex:
    """Objects of one kind by controlling owner uid; orphans by namespace."""

    owned: dict[str, dict[Where, None]] = field(default_factory=lambda: defaultdict(dict))
    orphans: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    owner_of: dict[Where, str] = field(default_factory=dict)  # "" for an orphan

    def update(self, event_type: str, obj: JsonObject) -> None:
        where = _where(obj)
        uid = None if event_type == "DELETED" else (controller_uid(obj) or "")
        previous = self.owner_of.get(where)
        if previous == uid:
            return
        if previous is not None:
            del self.owner_of[where]
            bucket: dict[Any, None] = (self.orphans[where[0]] if previous == ""
                                       else self.owned[previous])
            bucket.pop(where[1] if previous == "" else where, None)
            if not bucket:
                (self.orphans if previous == "" else self.owned).pop(
                    where[0] if previous == "" else previous, None)
        if uid is None:
            return
        self.owner_of[where] = uid
        if uid == "":
            self.orphans[where[0]][where[1]] = None
        else:
            self.owned[uid][where] = None


@dataclass
class _Registration:
    informer: Informer
    optional: bool
    handlers: list[Handler]
    owners: _OwnerIndex | None
    served: bool = True
    # watched only once this kind is served too (e.g. Deployments for Flagger's Canaries);
    # None as soon as one registration asks for the kind unconditionally
    requires: ResourceKind | None = None
    # what the cache keeps of each object: every registration's ``keep`` when they all
    # agree, else everything (a registration without one reads the whole object)
    keep: Keep | None = None
    keeps: set[Keep | None] = field(default_factory=set)


class Caches:
    """Informers for every registered kind, plus the owner and reference indexes."""

    def __init__(
        self,
        client: ListWatchClient,
        *,
        namespaces: Sequence[str] | None,
        enqueue: Callable[[ObjectKey], None],
        on_restart: Callable[[str], None] | None = None,
        serves: Callable[[ResourceKind], Awaitable[bool]] | None = None,
    ) -> None:
        self._client = client
        self._namespaces = namespaces
        self._enqueue = enqueue
        self._on_restart = on_restart
        self._serves = serves
        self._kinds: dict[str, _Registration] = {}
        # the reference index, both ways; most objects have one dependent and a key a few
        # references, so a lone dependent is held as itself and references as a tuple (a set
        # costs 216 bytes however little it holds: at 10,000 Rollouts, 8 MiB)
        self._dependents: dict[Ref, ObjectKey | set[ObjectKey]] = {}
        self._references: dict[ObjectKey, tuple[Ref, ...]] = {}
        # equal parts of the cached objects, held once across kinds
        self._shared = SharedParts()

    # -- registering ----------------------------------------------------------------------
    def watch(self, kind: ResourceKind, *, optional: bool = False, index_owners: bool = False,
              on_change: Handler | None = None, requires: ResourceKind | None = None,
              keep: Keep | None = None) -> None:
        """Cache ``kind``; registering a kind twice merges the registrations (it is optional
        only if every registration says so; it keeps a part of each object only if every
        registration keeps that same part). An optional kind with ``requires`` is watched
        only once that kind is served too (unless another registration asks for it
        without). ``keep`` returns the part of an object (already without managedFields and
        the last-applied annotation) the registering controller reads; it may change the
        object in place."""
        found = self._kinds.get(kind.plural)
        if found is None:
            found = self._kinds[kind.plural] = _Registration(
                informer=Informer(self._client, kind, namespaces=self._namespaces,
                                  on_change=self._dispatcher(kind.plural),
                                  on_restart=self._restart_reporter(kind.plural),
                                  transform=self._transformer(kind.plural)),
                optional=optional, handlers=[], owners=None, requires=requires)
        elif found.requires != requires:
            found.requires = None
        found.optional = found.optional and optional
        found.keeps.add(keep)
        found.keep = keep if len(found.keeps) == 1 else None
        if index_owners and found.owners is None:
            found.owners = _OwnerIndex()
        if on_change is not None:
            found.handlers.append(on_change)

    def _transformer(self, plural: str) -> Transform:
        def transform(obj: JsonObject, previous: JsonObject | None) -> JsonObject:
            keep = self._kinds[plural].keep
            obj = strip_unread_fields(obj)
            return self._shared.share(keep(obj) if keep is not None else obj, previous)

        return transform

    def _dispatcher(self, plural: str) -> Callable[[str, JsonObject], None]:
        def on_change(event_type: str, obj: JsonObject) -> None:
            self._changed(self._kinds[plural], event_type, obj)

        return on_change

    def _restart_reporter(self, plural: str) -> Callable[[], None] | None:
        report = self._on_restart
        if report is None:
            return None

        def restarted() -> None:
            report(plural)

        return restarted

    # -- running ----------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every informer; ``started()`` once every required kind has listed."""
        async with anyio.create_task_group() as group:
            for registration in self._kinds.values():
                if registration.optional:
                    group.start_soon(self._run_optional, registration)
                else:
                    await group.start(registration.informer.run)
            task_status.started()

    async def _run_optional(self, registration: _Registration) -> None:
        """An optional kind is watched once the API server serves it, and the kind it
        requires (checked again every minute, so installing Istio's or Flagger's CRDs later
        needs no restart)."""
        kind, requires = registration.informer.kind, registration.requires
        while True:
            missing = kind if not await self._is_served(kind) else requires if (
                requires is not None and not await self._is_served(requires)) else None
            if missing is None:
                break
            if registration.served:
                logger.log(logging.WARNING if missing is kind else logging.INFO,
                           "the API server does not serve %s (%s); carrying on without %s",
                           missing.plural, missing.api_version, kind.plural)
            registration.served = False
            await anyio.sleep(UNSERVED_RECHECK_SECONDS)
        registration.served = True
        await registration.informer.run()

    async def _is_served(self, kind: ResourceKind) -> bool:
        """Discovery's answer; when discovery itself fails, the kind is assumed served (its
        informer then retries and reports what is wrong)."""
        if self._serves is None:
            return True
        try:
            return await self._serves(kind)
        except KubeError as error:
            logger.warning("discovery of %s failed (%s); watching it anyway", kind.plural, error)
            return True

    async def set_namespaces(self, namespaces: Sequence[str] | None) -> None:
        """Watch other namespaces from now on (``None``: all): a new one is listed before its
        objects count; the objects of one dropped are reported DELETED (their keys are
        queued, so controllers forget them) and leave the caches."""
        self._namespaces = namespaces
        for registration in self._kinds.values():
            await registration.informer.set_namespaces(namespaces)

    @property
    def synced(self) -> bool:
        return all(r.informer.synced.is_set() for r in self._kinds.values() if not r.optional)

    def served(self, kind: ResourceKind) -> bool:
        """False once the API server was found not to serve ``kind`` (and not since)."""
        registration = self._kinds.get(kind.plural)
        return registration is not None and registration.served

    def listed(self, kind: ResourceKind) -> bool:
        """Whether ``kind`` has been listed from its API server (so a missing object is
        really missing, not merely unknown yet)."""
        registration = self._kinds.get(kind.plural)
        return registration is not None and registration.informer.synced.is_set()

    def release_unshared(self) -> int:
        """Forget the shared parts no cached object uses any more (when idle: a burst
        replaced many objects); how many were dropped."""
        return self._shared.release()

    # -- reading ----------------------------------------------------------------------------
    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> JsonObject | None:
        registration = self._kinds.get(kind.plural)
        if registration is None:
            return None
        return registration.informer.get(namespace if kind.namespaced else None, name)

    def items(self, kind: ResourceKind, namespace: str | None = None) -> list[JsonObject]:
        return self._kinds[kind.plural].informer.items(namespace)

    def owned(self, kind: ResourceKind, *, namespace: str, uid: str) -> list[JsonObject]:
        """The objects of ``kind`` in ``namespace`` whose controlling owner has ``uid``."""
        registration = self._kinds[kind.plural]
        assert registration.owners is not None, f"{kind.plural} is not indexed by owner"
        found = []
        for where in registration.owners.owned.get(uid, {}):
            obj = registration.informer.get(where[0], where[1]) if where[0] == namespace \
                else None
            if obj is not None:
                found.append(obj)
        return found

    def orphans(self, kind: ResourceKind, *, namespace: str) -> list[JsonObject]:
        """The objects of ``kind`` in ``namespace`` with no controlling owner."""
        registration = self._kinds[kind.plural]
        assert registration.owners is not None, f"{kind.plural} is not indexed by owner"
        names = registration.owners.orphans.get(namespace, {})
        return [obj for name in names
                if (obj := registration.informer.get(namespace, name)) is not None]

    def holding(self, kind: ResourceKind, namespace: str | None, name: str,
                version: str) -> JsonObject | None:
        """The cached object if it is at exactly ``version`` (``KubeClient``'s answers)."""
        registration = self._kinds.get(kind.plural)
        return None if registration is None else registration.informer.holding(
            namespace if kind.namespaced else None, name, version)

    def references(self, key: ObjectKey) -> tuple[Ref, ...]:
        """What ``key`` last said it reads, sorted by kind (plural), namespace and name."""
        return self._references.get(key, ())

    # -- writing through ----------------------------------------------------------------------
    def remember(self, kind: ResourceKind, obj: JsonObject, *, notify: bool = False) -> None:
        """Put an object a write returned into the cache. With ``notify`` its handlers run
        and the keys that reference it are woken, as for a watch event (whose later arrival
        will be a no-op), so whoever reacts to this object learns of the write at once."""
        registration = self._kinds[kind.plural]
        registration.informer.remember(obj)
        # Index what the informer kept: when the watch already brought a newer copy (the
        # kubelet's status update can overtake our own create's answer), ``obj`` is stale.
        namespace, name = _where(obj)
        kept = registration.informer.get(namespace if kind.namespaced else None, name)
        if registration.owners is not None:
            registration.owners.update("MODIFIED", kept if kept is not None else obj)
        if notify:
            for handler in registration.handlers:
                for key in handler("MODIFIED", kept if kept is not None else obj):
                    self._enqueue(key)
            for key in self._dependents_of((kind, namespace if kind.namespaced else "", name)):
                self._enqueue(key)

    def remember_answer(self, kind: ResourceKind, obj: JsonObject) -> None:
        """``remember`` a write's answer as the client parses it, if ``kind`` is cached."""
        if kind.plural in self._kinds:
            self.remember(kind, obj)

    def forget(self, kind: ResourceKind, namespace: str, name: str) -> None:
        registration = self._kinds[kind.plural]
        obj = registration.informer.get(namespace, name)
        registration.informer.forget(namespace, name)
        if obj is not None and registration.owners is not None:
            registration.owners.update("DELETED", obj)

    def set_references(self, key: ObjectKey, refs: Iterable[Ref]) -> None:
        """Record the objects ``key`` depends on, so their changes wake it."""
        wanted = frozenset(refs)
        before = self._references.get(key, ())
        previous = frozenset(before)
        if wanted == previous:
            return
        for ref in previous - wanted:
            self._drop_dependent(ref, key)
        for ref in wanted - previous:
            self._add_dependent(ref, key)
        if wanted:  # sorted once here: fingerprints list them in this order
            self._references[key] = tuple(sorted(wanted, key=_reference_order))
        else:
            self._references.pop(key, None)

    def _add_dependent(self, ref: Ref, key: ObjectKey) -> None:
        found = self._dependents.get(ref)
        if found is None:
            self._dependents[ref] = key
        elif isinstance(found, set):
            found.add(key)
        elif found != key:
            self._dependents[ref] = {found, key}

    def _drop_dependent(self, ref: Ref, key: ObjectKey) -> None:
        found = self._dependents.get(ref)
        if isinstance(found, set):
            found.discard(key)
            if len(found) == 1:
                self._dependents[ref] = next(iter(found))
        elif found == key:
            del self._dependents[ref]

    def _dependents_of(self, ref: Ref) -> tuple[ObjectKey, ...]:
        found = self._dependents.get(ref)
        if found is None:
            return ()
        return tuple(found) if isinstance(found, set) else (found,)

    # -- change handling ----------------------------------------------------------------------
    def _changed(self, registration: _Registration, event_type: str, obj: JsonObject) -> None:
        if registration.owners is not None:
            registration.owners.update(event_type, obj)
        for handler in registration.handlers:
            for key in handler(event_type, obj):
                self._enqueue(key)
        kind = registration.informer.kind
        namespace, name = _where(obj)
        for key in self._dependents_of((kind, namespace if kind.namespaced else "", name)):
            self._enqueue(key)


def _reference_order(ref: Ref) -> tuple[str, str, str]:
    kind, namespace, name = ref
    return kind.plural, namespace or "", name
