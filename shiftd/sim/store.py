"""The emulator's storage: objects, the global resourceVersion, watch history and watchers.

This is where the apiserver's write semantics live, independent of HTTP: system metadata
(uid, creationTimestamp, resourceVersion, and generation for the kinds that keep one, bumped
by any change but to metadata and, with a status subresource, status), the ``/status``
subresource split, optimistic concurrency and delete preconditions, no-op writes that change
nothing, finalizers, cascading deletion, and CRDs registering and unregistering their resource
types. What happens to a body before it is stored (schema, defaults, validation, managedFields)
is ``admission``'s.

Stored objects are never mutated after they are committed; every write builds a new dict, so
history entries and list results can share them safely. Everything here is synchronous: in a
single event loop a handler's read-modify-write cannot interleave with another's.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import math
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from shiftd.sim.admission import (
    admitted,
    check_name,
    now_rfc3339,
    record_fields,
    validate,
)
from shiftd.sim.errors import (
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    precondition_failed,
)
from shiftd.sim.kinds import CRD_GROUP, Registry, ResourceType, crd_resource_type, crd_status
from shiftd.sim.managed import Fields, Manager
from shiftd.sim.managed import Path as FieldPath

Obj = dict[str, Any]
Key = tuple[str, str]

_OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers",
})
# Set by the server alone; a client's values are ignored.
_SYSTEM_META_FIELDS = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                       "deletionGracePeriodSeconds", "selfLink")
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})
_NOT_SPEC_OR_STATUS = frozenset({"apiVersion", "kind", "metadata"})
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
NAMESPACES: Key = ("", "namespaces")
CRDS: Key = (CRD_GROUP, "customresourcedefinitions")


def _spec_of(obj: Obj, rtype: ResourceType) -> Obj:
    """What metadata.generation tracks: everything but metadata (and status, when the kind
    has a status subresource)."""
    skipped = _NOT_SPEC if rtype.status_subresource else _NOT_SPEC_OR_STATUS
    return {key: value for key, value in obj.items() if key not in skipped}


def _without_rv(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def _effective(rtype: ResourceType, body: Obj, current: Obj, subresource: str | None) -> Obj:
    """What a write through one endpoint can change, the rest as stored: with a status
    subresource, ``/status`` changes only status and the main endpoint everything else (so
    the ignored part is neither validated nor defaulted anew)."""
    if not rtype.status_subresource:
        return body
    if subresource == "status":
        kept = {key: value for key, value in current.items() if key not in ("status", "metadata")}
        return {**kept, "metadata": body.get("metadata", {}),
                **({"status": body["status"]} if "status" in body else {})}
    effective = {key: value for key, value in body.items() if key != "status"}
    if "status" in current:
        effective["status"] = current["status"]
    return effective


def _clean_meta(meta: Any) -> Obj:
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if k in _OBJECT_META_FIELDS and v is not None}


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write, as watchers and the history see it."""

    resource_version: int
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    previous: Obj | None  # the state before, so selector watches can see objects leave


class Expired(Exception):
    """A watch asked for history older than what is retained."""

    def __init__(self, oldest: int) -> None:
        super().__init__(oldest)
        self.oldest = oldest


class Watcher:
    """One open watch: the store pushes changes; the HTTP handler drains them."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.broken = False  # closed by drop_watches(): the connection must break, not end
        send, receive = anyio.create_memory_object_stream[Change](max_buffer_size=math.inf)
        self._send: MemoryObjectSendStream[Change] = send
        self.changes: MemoryObjectReceiveStream[Change] = receive

    def push(self, change: Change) -> None:
        # A closed watch is ending and will not read this change.
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait(change)

    def close(self, *, broken: bool) -> None:
        self.broken = self.broken or broken
        self._send.close()

    def dispose(self) -> None:
        self._send.close()
        self.changes.close()


class Store:
    """All objects of every served type, and the machinery to watch them."""

    def __init__(self, registry: Registry, *, history_limit: int = 10_000,
                 clock: Callable[[], str] = now_rfc3339) -> None:
        """``clock`` gives the timestamps the server writes (RFC 3339 text)."""
        self.clock = clock
        self.registry = registry
        self.resource_version = 0
        self._history_limit = history_limit
        self._objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self._history: dict[Key, deque[Change]] = {}
        self._floor: dict[Key, int] = {}  # watching from below this version is 410 Gone
        self._watchers: dict[Key, set[Watcher]] = {}

    # --- reads -------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._objects.get(rtype.key, {}).get((self._ns(rtype, namespace), name))
        if obj is None:
            raise not_found(rtype.group, rtype.plural, name)
        return obj

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get(rtype.key, {}).get((self._ns(rtype, namespace), name))

    def list(
        self, rtype: ResourceType, namespace: str | None, predicate: Callable[[Obj], bool]
    ) -> tuple[builtins.list[Obj], int]:
        objects = self._objects.get(rtype.key, {})
        items = [
            obj
            for (ns, _), obj in sorted(objects.items(), key=lambda item: item[0])
            if (namespace is None or not rtype.namespaced or ns == namespace) and predicate(obj)
        ]
        return items, self.resource_version

    # --- writes ------------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Obj, version: str, *,
               manager: Manager | None = None, applied: Fields | None = None) -> Obj:
        """Create an object; ``manager`` (with the ``applied`` fields of a server-side apply)
        becomes the owner of its fields in managedFields."""
        body = admitted(rtype, body, version, None)
        meta = _clean_meta(body.get("metadata"))
        ns = self._ns(rtype, namespace)
        if rtype.namespaced:
            if meta.get("namespace", ns) != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
            if self.find(self._namespace_type(), None, ns) is None:
                raise not_found("", "namespaces", ns)
        else:
            meta.pop("namespace", None)
        name = meta.get("name") or self._generate_name(rtype, ns, meta.get("generateName"))
        if not name:
            raise invalid(rtype.kind, None,
                          "metadata.name: Required value: name or generateName is required",
                          group=rtype.group)
        if (ns, name) in self._objects.get(rtype.key, {}):
            raise already_exists(rtype.group, rtype.plural, name)
        check_name(rtype, name)
        for field in (*_SYSTEM_META_FIELDS, "resourceVersion"):
            meta.pop(field, None)
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=self.clock())
        if rtype.generation:
            meta["generation"] = 1
        if rtype.key == NAMESPACES:
            meta["labels"] = {**meta.get("labels", {}), "kubernetes.io/metadata.name": name}
        obj: Obj = {"apiVersion": rtype.api_version(version), "kind": rtype.kind,
                    "metadata": meta}
        obj.update((k, v) for k, v in body.items() if k not in ("apiVersion", "kind", "metadata"))
        validate(rtype, obj, None)
        if rtype.key == CRDS:
            self._check_crd(obj)
            obj["status"] = crd_status(obj, meta["creationTimestamp"])
        elif rtype.status_subresource:
            obj.pop("status", None)
            if rtype.initial_status is not None:
                obj["status"] = copy.deepcopy(dict(rtype.initial_status))
        if manager is not None:
            record_fields(rtype, obj, None, manager=manager, applied=applied, taken={},
                          now=self.clock())
        self._commit(rtype, "ADDED", obj, None)
        if rtype.key == CRDS:
            self.registry.add(crd_resource_type(obj))
        return obj

    def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        version: str,
        subresource: str | None = None,
        manager: Manager | None = None,
        applied: Fields | None = None,
        taken: Mapping[FieldPath, str] | None = None,
    ) -> Obj:
        """Replace an object (PUT, or the result of a patch), honouring resourceVersion.

        ``manager`` takes ownership of the fields it changed (an apply: of its ``applied``
        fields, and of the ``taken`` ones a forced apply took from other managers).
        """
        current = self.get(rtype, namespace, name)
        body_meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        assert isinstance(body_meta, dict)
        if body_meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({body_meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        wanted_rv = body_meta.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.group, rtype.plural, name)
        body = admitted(rtype, _effective(rtype, body, current, subresource), version, current)
        if subresource == "status":
            new = {key: value for key, value in current.items() if key != "status"}
            if body.get("status") is not None:
                new["status"] = body["status"]
            new["metadata"] = dict(current["metadata"])
        else:
            new = self._updated_main(rtype, current, body)
            validate(rtype, new, current)
        new["apiVersion"] = rtype.api_version(version)
        if _without_rv(new) == _without_rv({**current, "apiVersion": new["apiVersion"]}):
            return current  # like etcd: an update that changes nothing writes nothing
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rtype, new, propagation="Background")
        if rtype.key == CRDS:
            self._check_crd(new)
        if manager is not None:
            record_fields(rtype, new, current, manager=manager, applied=applied, now=self.clock(),
                                taken=taken or {})
        self._commit(rtype, "MODIFIED", new, current)
        if rtype.key == CRDS and new["metadata"]["generation"] != current["metadata"]["generation"]:
            self.registry.add(crd_resource_type(new))
        return new

    def _updated_main(self, rtype: ResourceType, current: Obj, body: Obj) -> Obj:
        meta = _clean_meta(body.get("metadata"))
        for field in (*_SYSTEM_META_FIELDS, "name", "namespace", "managedFields"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        new: Obj = {"apiVersion": current["apiVersion"], "kind": rtype.kind, "metadata": meta}
        new.update(
            (key, value) for key, value in body.items()
            if key not in ("apiVersion", "kind", "metadata")
        )
        if rtype.status_subresource:
            new.pop("status", None)
            if "status" in current:
                new["status"] = current["status"]
        if rtype.generation and _spec_of(new, rtype) != _spec_of(current, rtype):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        return new

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
        propagation: str = "Background",
    ) -> Obj:
        """Delete an object (or mark it, if it has finalizers); returns its last state."""
        current = self.get(rtype, namespace, name)
        meta = current["metadata"]
        for field, wanted, stored in (("UID", precondition_uid, meta["uid"]),
                                      ("ResourceVersion", precondition_rv,
                                       meta["resourceVersion"])):
            if wanted and wanted != stored:
                raise precondition_failed(rtype.kind, rtype.group, name, field=field,
                                          wanted=wanted, stored=stored)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return current
            marked = {**current, "metadata": {**meta, "deletionTimestamp": self.clock(),
                                              "deletionGracePeriodSeconds": 0}}
            self._commit(rtype, "MODIFIED", marked, current)
            return marked
        return self._remove(rtype, current, propagation=propagation)

    def _remove(self, rtype: ResourceType, current: Obj, *, propagation: str) -> Obj:
        gone = {**current, "metadata": dict(current["metadata"])}
        self._commit(rtype, "DELETED", gone, current)
        uid = current["metadata"]["uid"]
        if rtype.key == NAMESPACES:
            self._delete_namespace_contents(current["metadata"]["name"])
        if rtype.key == CRDS:
            self._unregister_crd(current)
        if propagation != "Orphan":
            self._delete_dependents(uid)
        return gone

    def _delete_namespace_contents(self, namespace: str) -> None:
        for resource_type in self.registry.types():
            if not resource_type.namespaced:
                continue
            for (ns, _), obj in list(self._objects.get(resource_type.key, {}).items()):
                if ns == namespace and self.find(resource_type, ns, obj["metadata"]["name"]):
                    self._remove(resource_type, obj, propagation="Background")

    def _delete_dependents(self, owner_uid: str) -> None:
        for resource_type in self.registry.types():
            for obj in list(self._objects.get(resource_type.key, {}).values()):
                references = obj["metadata"].get("ownerReferences") or ()
                if not any(ref.get("uid") == owner_uid for ref in references):
                    continue
                meta = obj["metadata"]
                if self.find(resource_type, meta.get("namespace"), meta["name"]) is obj:
                    self.delete(resource_type, meta.get("namespace"), meta["name"])

    def _unregister_crd(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        resource_type = self.registry.remove(key)
        if resource_type is None:
            return
        self._objects.pop(key, None)
        self._history.pop(key, None)
        self._floor[key] = self.resource_version
        for watcher in self._watchers.pop(key, set()):
            watcher.close(broken=False)

    def _check_crd(self, crd: Obj) -> None:
        try:
            resource_type = crd_resource_type(crd)
        except ValueError as error:
            raise invalid("CustomResourceDefinition", crd["metadata"].get("name"), str(error),
                          group=CRD_GROUP) from error
        existing = self.registry.get(resource_type.key)
        if existing is not None and not existing.custom:
            raise invalid("CustomResourceDefinition", crd["metadata"].get("name"),
                          "spec.names.plural: conflicts with a built-in resource",
                          group=CRD_GROUP)

    def _commit(self, rtype: ResourceType, event: str, obj: Obj, previous: Obj | None) -> None:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        meta = obj["metadata"]
        objects = self._objects.setdefault(rtype.key, {})
        slot = (meta.get("namespace", ""), meta["name"])
        if event == "DELETED":
            objects.pop(slot, None)
        else:
            objects[slot] = obj
        change = Change(self.resource_version, event, obj, previous)
        history = self._history.setdefault(rtype.key, deque())
        if len(history) >= self._history_limit:
            self._floor[rtype.key] = history.popleft().resource_version
        history.append(change)
        for watcher in self._watchers.get(rtype.key, ()):
            watcher.push(change)

    # --- watching ----------------------------------------------------------------------------

    def subscribe(
        self, rtype: ResourceType, since: int | None
    ) -> tuple[builtins.list[Change], Watcher]:
        """Start a watch: the changes to send first, and the watcher for what follows.

        ``since=None`` starts with synthetic ADDED events for every current object; a version
        replays the retained history after it, or raises ``Expired`` if that is gone.
        """
        if since is None:
            initial = [
                Change(int(obj["metadata"]["resourceVersion"]), "ADDED", obj, None)
                for _, obj in sorted(self._objects.get(rtype.key, {}).items())
            ]
        else:
            floor = self._floor.get(rtype.key, 0)
            if since < floor:
                raise Expired(floor + 1)
            initial = [c for c in self._history.get(rtype.key, ()) if c.resource_version > since]
        watcher = Watcher(rtype.key)
        self._watchers.setdefault(rtype.key, set()).add(watcher)
        return initial, watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.key, set()).discard(watcher)
        watcher.dispose()

    def oldest_version(self, rtype: ResourceType) -> int:
        """The oldest resourceVersion still in the watch history of ``rtype``."""
        return self._floor.get(rtype.key, 0)

    def compact(self) -> None:
        """Forget all watch history: watching from any older version is now 410 Gone."""
        for key in set(self._history) | set(self._objects):
            self._floor[key] = self.resource_version
        self._history.clear()

    def close_watches(self, *, broken: bool) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.close(broken=broken)

    # --- helpers -----------------------------------------------------------------------------

    def _ns(self, rtype: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rtype.namespaced else ""

    def _namespace_type(self) -> ResourceType:
        namespace_type = self.registry.get(NAMESPACES)
        assert namespace_type is not None
        return namespace_type

    def _generate_name(self, rtype: ResourceType, ns: str, prefix: Any) -> str | None:
        if not prefix:
            return None
        existing = self._objects.get(rtype.key, {})
        while True:
            suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
            if (ns, f"{prefix}{suffix}") not in existing:
                return f"{prefix}{suffix}"


__all__ = ["Change", "Expired", "Store", "Watcher"]
