"""The invariant monitor: watches a test's namespace and records every observed state that
breaks one of shiftd's safety promises.

At each watch event (informers on VirtualServices, DestinationRules, Services, ReplicaSets,
Pods, Rollouts and AnalysisRuns) the monitor checks the namespace as it now stands:

1. **Weights add up.** Every http/tls/tcp route of a VirtualService that gives any destination
   a weight has weights summing to 100.
2. **No traffic to pods that are not available.** A destination (a Service by its selector, or
   a DestinationRule subset by its labels) with weight > 0 must select an available pod — a
   Ready Pod, or a ReplicaSet with ``availableReplicas > 0`` whose template labels match —
   judged once the Pod and ReplicaSet caches have caught up with the routing objects' version
   (each kind has its own watch, and after a restart one may lag), and
   once the route has served at all: a route that has never had an available pod behind it
   (a cold start, nothing deployed yet) cannot be blamed, but a route that served and then
   points at nothing available, or a weighted destination that selects nothing available
   while another destination of the same route does, is a violation.
3. **One ReplicaSet per template.** No Rollout controls two ReplicaSets whose pod templates
   are equal once the ``rollouts-pod-template-hash`` label is ignored.

and, against what it saw before (``tests.support.progress``): 4. steps and the traffic to the
new revision only move forward (except on abort), 5. no ``setWeight`` step is skipped,
6. no AnalysisRun metric is measured twice for one instant or more often than its count.

Use it as ``async with InvariantMonitor.watching(client, namespace) as monitor:``; leaving
the block raises ``AssertionError`` listing the violations (each with the event that exposed
it), unless ``monitor.expect_violations()`` was called by a test that breaks them on purpose.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from shiftd.kube.informer import Informer, ListWatchClient
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    DESTINATION_RULE,
    POD,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from tests.support.progress import ProgressJudge

Obj = dict[str, Any]
HASH_LABEL = "rollouts-pod-template-hash"
WATCHED = (VIRTUAL_SERVICE, DESTINATION_RULE, SERVICE, REPLICA_SET, POD, ROLLOUT, ANALYSIS_RUN)


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _host_service(host: str, namespace: str) -> str:
    """The Service name a destination host names (short name or FQDN in this namespace)."""
    name, _, rest = host.partition(".")
    return name if not rest or rest.startswith(f"{namespace}.") or rest == namespace else host


@dataclass
class Snapshot:
    """The namespace as the informers hold it now; ``versions`` is the resourceVersion each
    kind's cache is at (absent: taken as current)."""

    namespace: str
    objects: dict[str, list[Obj]]
    versions: dict[str, int] = field(default_factory=dict)

    def lags_behind(self, kinds: Iterable[ResourceKind], version: int) -> bool:
        """Whether the cache of one of ``kinds`` is older than ``version``: its informer has
        not yet seen everything written before it (each kind is watched separately)."""
        return any(self.versions.get(kind.plural, version) < version for kind in kinds)

    def named(self, kind: ResourceKind, name: str) -> Obj | None:
        return next((o for o in self.objects.get(kind.plural, [])
                     if o["metadata"]["name"] == name), None)

    def available(self, selector: Mapping[str, str]) -> bool:
        """Whether ``selector`` selects an available pod (or an available ReplicaSet's)."""
        if any(_matches(selector, (p["metadata"].get("labels") or {})) and _pod_ready(p)
               for p in self.objects.get(POD.plural, [])):
            return True
        for rs in self.objects.get(REPLICA_SET.plural, []):
            template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get(
                "labels") or {}
            if _matches(selector, template_labels) and int(
                    (rs.get("status") or {}).get("availableReplicas") or 0) > 0:
                return True
        return False

    def destination_selector(self, destination: Obj) -> dict[str, str] | None:
        """The labels a destination routes to; ``None`` when its Service (or subset) is not
        in this namespace (not ours to judge)."""
        service = self.named(SERVICE, _host_service(str(destination.get("host")),
                                                    self.namespace))
        if service is None:
            return None
        selector = dict((service.get("spec") or {}).get("selector") or {})
        subset = destination.get("subset")
        if subset:
            labels = self._subset_labels(str(destination.get("host")), str(subset))
            if labels is None:
                return None
            selector.update(labels)
        return selector

    def _subset_labels(self, host: str, subset: str) -> dict[str, str] | None:
        for rule in self.objects.get(DESTINATION_RULE.plural, []):
            if _host_service(str(rule["spec"].get("host")), self.namespace) != \
                    _host_service(host, self.namespace):
                continue
            for candidate in rule["spec"].get("subsets") or []:
                if candidate.get("name") == subset:
                    return dict(candidate.get("labels") or {})
        return None


def _object_version(obj: Obj) -> int:
    raw = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return int(raw) if raw.isdigit() else 0


def _version_of(informer: Informer) -> int:
    """How far an informer's cache has come (0 while it must list again); a version that is
    not a number is taken as current."""
    versions = informer.resource_versions
    if any(not v for v in versions):
        return 0
    if not all(v.isdigit() for v in versions):
        return 2**63
    return min(int(v) for v in versions)


def _routes(vs: Obj) -> Iterable[tuple[str, list[Obj]]]:
    spec = vs.get("spec") or {}
    for section in ("http", "tls", "tcp"):
        for index, route in enumerate(spec.get(section) or []):
            yield f"{vs['metadata']['name']}.{section}[{index}]", list(route.get("route") or [])


def _template_identity(rs: Obj) -> str:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return repr(_sorted(template))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


@dataclass
class InvariantMonitor:
    namespace: str
    violations: list[str] = field(default_factory=list)
    events: int = 0
    _served: set[str] = field(default_factory=set)  # routes that have had an available pod
    _expected: bool = False
    _informers: dict[str, Informer] = field(default_factory=dict)
    _progress: ProgressJudge = field(default_factory=ProgressJudge)

    def expect_violations(self) -> None:
        """This test breaks the invariants on purpose: do not fail it for that."""
        self._expected = True

    def snapshot(self) -> Snapshot:
        return Snapshot(self.namespace, {plural: informer.items(self.namespace)
                                         for plural, informer in self._informers.items()},
                        {plural: _version_of(informer)
                         for plural, informer in self._informers.items()})

    def check(self, cause: str) -> None:
        self.judge(self.snapshot(), cause=cause)

    def judge(self, snapshot: Snapshot, *, cause: str) -> None:
        """Record the violations ``snapshot`` shows (each once)."""
        found = [*self._check_routes(snapshot), *self._check_replica_sets(snapshot)]
        objects = snapshot.objects
        by_name = {kind.plural: {o["metadata"]["name"]: o for o in objects.get(kind.plural, [])}
                   for kind in (VIRTUAL_SERVICE, SERVICE, DESTINATION_RULE)}
        found += self._progress.judge(objects.get(ROLLOUT.plural, []), by_name,
                                      objects.get(ANALYSIS_RUN.plural, []),
                                      caught_up=snapshot.versions)
        for violation in found:
            message = f"{violation} (after {cause})"
            if message not in self.violations:
                self.violations.append(message)

    def _check_routes(self, snapshot: Snapshot) -> Iterable[str]:
        # Availability is judged only when the pods' and ReplicaSets' caches have caught up
        # with the routing objects: a lagging watch would show pods older than the route.
        selectors = [*snapshot.objects.get(SERVICE.plural, []),
                     *snapshot.objects.get(DESTINATION_RULE.plural, [])]
        for vs in snapshot.objects.get(VIRTUAL_SERVICE.plural, []):
            horizon = max((_object_version(o) for o in [vs, *selectors]), default=0)
            current = not snapshot.lags_behind((REPLICA_SET, POD), horizon)
            for where, destinations in _routes(vs):
                yield from self._check_route(snapshot, where, destinations, current=current)

    def _check_route(self, snapshot: Snapshot, where: str, destinations: list[Obj], *,
                     current: bool = True) -> Iterable[str]:
        weighted = [d for d in destinations if "weight" in d]
        if weighted and sum(int(d.get("weight") or 0) for d in destinations) != 100:
            yield f"{where}: weights {[d.get('weight') for d in destinations]} do not add " \
                  "up to 100"
        judged: list[tuple[Obj, bool]] = []
        for entry in destinations:
            weight = 100 if len(destinations) == 1 else int(entry.get("weight") or 0)
            selector = snapshot.destination_selector(entry.get("destination") or {})
            if weight > 0 and selector is not None:
                judged.append((entry, snapshot.available(selector)))
        if any(ok for _, ok in judged):
            self._served.add(where)
        if where not in self._served or not current:
            return  # a cold start (nothing ever available behind it), or pods not seen yet
        for entry, ok in judged:
            if not ok:
                destination = entry.get("destination") or {}
                yield (f"{where}: weight {entry.get('weight', 100)} to {destination.get('host')}"
                       f"{'/' + destination['subset'] if destination.get('subset') else ''}, "
                       "which selects no available pod")

    def _check_replica_sets(self, snapshot: Snapshot) -> Iterable[str]:
        seen: dict[tuple[str, str], str] = {}
        for rs in snapshot.objects.get(REPLICA_SET.plural, []):
            owner = next((ref for ref in rs["metadata"].get("ownerReferences") or []
                          if ref.get("controller") and ref.get("kind") == "Rollout"), None)
            if owner is None:
                continue
            identity = (str(owner.get("uid")), _template_identity(rs))
            other = seen.setdefault(identity, rs["metadata"]["name"])
            if other != rs["metadata"]["name"]:
                yield (f"Rollout {owner.get('name')} owns two ReplicaSets with the same "
                       f"template: {other} and {rs['metadata']['name']}")

    def _on_change(self, kind: ResourceKind) -> Any:
        def changed(event_type: str, obj: Obj) -> None:
            self.events += 1
            self.check(f"{event_type} {kind.kind} {(obj.get('metadata') or {}).get('name')}")

        return changed

    @classmethod
    @asynccontextmanager
    async def watching(cls, client: ListWatchClient, namespace: str, *,
                       kinds: Sequence[ResourceKind] = WATCHED) -> AsyncIterator[InvariantMonitor]:
        monitor = cls(namespace)
        if not kinds:  # watching nothing: no task group (safe across a fixture's yield)
            yield monitor
            return
        for kind in kinds:
            monitor._informers[kind.plural] = Informer(
                client, kind, namespaces=[namespace], on_change=monitor._on_change(kind),
                on_restart=monitor._progress.gap)
        async with anyio.create_task_group() as group:
            for informer in monitor._informers.values():
                await group.start(informer.run)
            try:
                yield monitor
            finally:
                group.cancel_scope.cancel()
        monitor.violations.extend(monitor._progress.unresolved())
        if monitor.violations and not monitor._expected:
            listed = "\n  ".join(monitor.violations)
            raise AssertionError(f"invariants broken in namespace {namespace}:\n  {listed}")
