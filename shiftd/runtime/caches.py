"""The watch task's caches and the indexes that turn an object's change into Rollout keys.

One ``Informer`` per kind (Rollouts, ReplicaSets, Services, VirtualServices,
DestinationRules, AnalysisRuns, AnalysisTemplates, ClusterAnalysisTemplates). A change to a
Rollout queues it; a change to a ReplicaSet or AnalysisRun queues the Rollout that controls it
(and an AnalysisRun also the analysis task); a change to a Service, mesh object or template
queues every Rollout that last reconciled with a reference to it. Nothing here writes to the
API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.kube.informer import Informer, ListWatchClient
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    DESTINATION_RULE,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    VIRTUAL_SERVICE,
    ResourceKind,
)

JsonObject = dict[str, Any]
Ref = tuple[str, str, str]  # kind plural, namespace, name


def rollout_key(obj: JsonObject) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _controller_uid(obj: JsonObject) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def entry(kind: ResourceKind, obj: JsonObject) -> str:
    """One object's line in a fingerprint: ``<plural>/<name>@<resourceVersion>``."""
    return f"{kind.plural}/{_name(obj)}@{_version(obj)}"


def _version(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _name(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _bind(callback: Callable[[str], None], plural: str) -> Callable[[], None]:
    def bound() -> None:
        callback(plural)

    return bound


class Caches:
    """Informers for every kind a reconcile reads, plus the reverse indexes."""

    # Cluster-scoped kinds a namespace-bound RoleBinding cannot list: readiness does not wait
    # for them (a Rollout naming a missing one is InvalidSpec until it is seen).
    OPTIONAL = frozenset({CLUSTER_ANALYSIS_TEMPLATE.plural})
    WATCHED: tuple[ResourceKind, ...] = (ROLLOUT, REPLICA_SET, SERVICE, VIRTUAL_SERVICE,
                                         DESTINATION_RULE, ANALYSIS_RUN, ANALYSIS_TEMPLATE,
                                         CLUSTER_ANALYSIS_TEMPLATE)

    def __init__(
        self,
        client: ListWatchClient,
        *,
        namespaces: Sequence[str] | None,
        enqueue: Callable[[str], None],
        on_restart: Callable[[str], None] | None = None,
        on_analysis_run: Callable[[str], None] | None = None,
    ) -> None:
        self._enqueue = enqueue
        self._on_analysis_run = on_analysis_run
        self._informers: dict[str, Informer] = {}
        # ReplicaSets by the uid of their controlling owner; orphans by namespace.
        self._owned: dict[str, dict[str, JsonObject]] = defaultdict(dict)
        self._orphans: dict[str, dict[str, JsonObject]] = defaultdict(dict)
        self._replica_set_owner: dict[tuple[str, str], str] = {}  # "" for orphans
        # AnalysisRuns (namespace, name) by the uid of their controlling owner, so a Rollout's
        # reconcile finds its runs without scanning every run in its namespace.
        self._runs_of: dict[str, dict[tuple[str, str], None]] = defaultdict(dict)
        self._run_owner: dict[tuple[str, str], str] = {}
        self._rollout_uids: dict[str, str] = {}  # uid -> rollout key
        self._dependents: dict[Ref, set[str]] = defaultdict(set)
        self._references: dict[str, set[Ref]] = {}
        for kind in self.WATCHED:
            self._informers[kind.plural] = Informer(
                client, kind, namespaces=namespaces,
                on_change=self._handler(kind),
                on_restart=_bind(on_restart, kind.plural) if on_restart else None,
            )

    # -- running ----------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every informer; ``started()`` once all of them have listed."""
        async with anyio.create_task_group() as group:
            for plural, informer in self._informers.items():
                if plural in self.OPTIONAL:
                    group.start_soon(informer.run)
                else:
                    await group.start(informer.run)
            task_status.started()

    @property
    def synced(self) -> bool:
        return all(informer.synced.is_set() for plural, informer in self._informers.items()
                   if plural not in self.OPTIONAL)

    # -- reading ----------------------------------------------------------------------------
    def informer(self, kind: ResourceKind) -> Informer:
        return self._informers[kind.plural]

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> JsonObject | None:
        return self._informers[kind.plural].get(namespace if kind.namespaced else None, name)

    def analysis_runs_for(self, *, namespace: str, uid: str) -> list[JsonObject]:
        """The AnalysisRuns this Rollout controls."""
        informer = self._informers[ANALYSIS_RUN.plural]
        runs = []
        for run_namespace, name in self._runs_of.get(uid, {}):
            run = informer.get(run_namespace, name) if run_namespace == namespace else None
            if run is not None:
                runs.append(run)
        return runs

    def rollout_keys(self) -> list[str]:
        return [rollout_key(obj) for obj in self._informers[ROLLOUT.plural].items()]

    def replica_sets_for(self, *, namespace: str, uid: str) -> list[JsonObject]:
        """ReplicaSets this Rollout controls, plus orphans in its namespace it may adopt."""
        owned = list(self._owned.get(uid, {}).values())
        return owned + list(self._orphans.get(namespace, {}).values())

    # -- writing through ----------------------------------------------------------------------
    def remember(self, kind: ResourceKind, obj: JsonObject) -> None:
        informer = self._informers[kind.plural]
        informer.remember(obj)
        if kind is ANALYSIS_RUN:
            metadata = obj.get("metadata") or {}
            kept = informer.get(metadata.get("namespace", ""), str(metadata.get("name")))
            self._index_analysis_run("MODIFIED", kept if kept is not None else obj)
            # Its watch event will be a no-op, so do now what that event would do: queue the
            # run for the analysis task and the Rollout that controls it.
            if self._on_analysis_run is not None:
                self._on_analysis_run(rollout_key(obj))
            uid = _controller_uid(obj)
            owner = self._rollout_uids.get(uid) if uid is not None else None
            if owner is not None:
                self._enqueue(owner)
        if kind is REPLICA_SET:
            # Index what the informer kept: when the watch already brought a newer copy (the
            # kubelet's status update can overtake our own create's answer), ``obj`` is stale.
            metadata = obj.get("metadata") or {}
            kept = informer.get(metadata.get("namespace", ""), str(metadata.get("name")))
            self._index_replica_set("MODIFIED", kept if kept is not None else obj)

    def forget(self, kind: ResourceKind, namespace: str, name: str) -> None:
        informer = self._informers[kind.plural]
        obj = informer.get(namespace, name)
        informer.forget(namespace, name)
        if obj is not None and kind is REPLICA_SET:
            self._index_replica_set("DELETED", obj)
        if obj is not None and kind is ANALYSIS_RUN:
            self._index_analysis_run("DELETED", obj)

    def set_references(self, key: str, refs: Iterable[tuple[ResourceKind, str, str]]) -> None:
        """Record the objects ``key`` depends on, so their changes wake it."""
        wanted = {(kind.plural, namespace, name) for kind, namespace, name in refs}
        previous = self._references.get(key, set())
        if wanted == previous:
            return
        for ref in previous - wanted:
            self._dependents[ref].discard(key)
            if not self._dependents[ref]:
                del self._dependents[ref]
        for ref in wanted - previous:
            self._dependents[ref].add(key)
        self._references[key] = wanted

    def fingerprint(self, key: str, rollout: JsonObject) -> tuple[str, ...]:
        """The resourceVersions of everything a plan of this Rollout reads: the Rollout, the
        ReplicaSets and AnalysisRuns it may own or adopt, and what it last referenced. Equal
        fingerprints mean equal inputs (time aside)."""
        metadata = rollout.get("metadata") or {}
        namespace = str(metadata.get("namespace", ""))
        uid = str(metadata.get("uid", ""))
        versions = [entry(ROLLOUT, rollout)]
        versions.extend(sorted(entry(REPLICA_SET, rs)
                               for rs in self.replica_sets_for(namespace=namespace, uid=uid)))
        versions.extend(sorted(entry(ANALYSIS_RUN, run)
                               for run in self.analysis_runs_for(namespace=namespace, uid=uid)))
        for plural, ref_namespace, name in sorted(self._references.get(key, ())):
            found = self._informers[plural].get(ref_namespace or None, name)
            versions.append(f"{plural}/{name}@{_version(found) if found else '-'}")
        return tuple(versions)

    def drop_rollout(self, key: str) -> None:
        self.set_references(key, ())
        self._references.pop(key, None)

    # -- change handlers ----------------------------------------------------------------------
    def _handler(self, kind: ResourceKind) -> Callable[[str, JsonObject], None]:
        if kind is ROLLOUT:
            return self._on_rollout
        if kind is REPLICA_SET:
            return self._on_replica_set
        if kind is ANALYSIS_RUN:
            return self._on_owned

        def on_referenced(event_type: str, obj: JsonObject) -> None:
            metadata = obj.get("metadata") or {}
            ref = (kind.plural, str(metadata.get("namespace", "")), str(metadata.get("name")))
            for key in tuple(self._dependents.get(ref, ())):
                self._enqueue(key)

        return on_referenced

    def _on_rollout(self, event_type: str, obj: JsonObject) -> None:
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        key = rollout_key(obj)
        if event_type == "DELETED":
            self._rollout_uids.pop(uid, None)
        else:
            self._rollout_uids[uid] = key
        self._enqueue(key)

    def _on_owned(self, event_type: str, obj: JsonObject) -> None:
        self._index_analysis_run(event_type, obj)
        if self._on_analysis_run is not None and event_type != "DELETED":
            self._on_analysis_run(rollout_key(obj))
        uid = _controller_uid(obj)
        key = self._rollout_uids.get(uid) if uid is not None else None
        if key is not None:
            self._enqueue(key)

    def _on_replica_set(self, event_type: str, obj: JsonObject) -> None:
        self._index_replica_set(event_type, obj)
        uid = _controller_uid(obj)
        if uid is not None:
            key = self._rollout_uids.get(uid)
            if key is not None:
                self._enqueue(key)
            return
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        for key in self._rollout_uids.values():  # an orphan may be adopted by any Rollout
            if key.startswith(f"{namespace}/"):
                self._enqueue(key)

    def _index_analysis_run(self, event_type: str, obj: JsonObject) -> None:
        metadata = obj.get("metadata") or {}
        where = (str(metadata.get("namespace", "")), str(metadata.get("name")))
        uid = None if event_type == "DELETED" else _controller_uid(obj)
        previous = self._run_owner.get(where)
        if previous == uid:
            return
        if previous is not None:
            del self._run_owner[where]
            owned = self._runs_of[previous]
            owned.pop(where, None)
            if not owned:
                del self._runs_of[previous]
        if uid is not None:
            self._runs_of[uid][where] = None
            self._run_owner[where] = uid

    def _index_replica_set(self, event_type: str, obj: JsonObject) -> None:
        metadata = obj.get("metadata") or {}
        where = (str(metadata.get("namespace", "")), str(metadata.get("name")))
        previous_owner = self._replica_set_owner.pop(where, "")
        if previous_owner:
            self._owned.get(previous_owner, {}).pop(where[1], None)
        else:
            self._orphans.get(where[0], {}).pop(where[1], None)
        if event_type == "DELETED":
            return
        uid = _controller_uid(obj)
        if uid is None:
            self._orphans[where[0]][where[1]] = obj
            self._replica_set_owner[where] = ""
        else:
            self._owned[uid][where[1]] = obj
            self._replica_set_owner[where] = uid
