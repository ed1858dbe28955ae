"""The Rollout controller: one Rollout key in, its plan computed by the pure core, its writes
applied, and an ``Outcome`` (when to look again) handed back to the engine.

``register`` declares what it reads: Rollouts, the ReplicaSets and AnalysisRuns they control
(indexed by owner), the Services, templates, mesh objects and ``workloadRef`` Deployments
they name (woken through the reference index; a Deployment's template is resolved into the
Rollout before parsing), each traffic router's kinds (optional: a cluster without Istio's CRDs still
runs basic canaries). ``reconcile`` reads only the caches, asks the Rollout's traffic router
what the mesh routes, calls ``plan_rollout`` (or ``plan_invalid_spec``) and applies the plan
through ``RolloutWrites``. A Rollout whose ``restartAt`` asks for a restart has its pods
listed for that reconcile (``RolloutPods``; no pod informer). A write that meets a conflict
(409, a failed JSON-patch ``test``, an object already existing or already gone) means the plan
was made from stale objects: the Rollout is re-read and the key retried.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shiftd.controllers.rollout_inputs import (
    ReplicaSetViews,
    analysis_specs,
    observe,
    references,
    replica_set_as_read,
    service_as_read,
)
from shiftd.controllers.rollout_pods import RolloutPods
from shiftd.controllers.rollout_writes import RolloutWrites
from shiftd.decide.rollout.actions import Plan
from shiftd.decide.rollout.hashing import pod_template_hash, steps_hash
from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.plan import plan_invalid_spec, plan_rollout
from shiftd.decide.rollout.restart import needs_restart
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import Conflict, Invalid, KubeError, NotFound
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    DEPLOYMENT,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    ResourceKind,
)
from shiftd.model.argo.rollout import (
    CONTROLLER_INSTANCE_LABEL,
    InvalidSpecError,
    Rollout,
    RolloutDefaults,
    parse_rollout,
)
from shiftd.model.argo.workload import workload_ref_of
from shiftd.runtime.caches import Caches, controller_key, resource_version
from shiftd.runtime.clock import Clock
from shiftd.runtime.engine import DONE, Outcome
from shiftd.runtime.keys import ObjectKey, key_of
from shiftd.runtime.telemetry import Telemetry
from shiftd.traffic.istio.routes import RouteError
from shiftd.traffic.registry import TrafficRouters

logger = logging.getLogger(__name__)

KIND = ROLLOUT.kind
JsonObject = dict[str, Any]
Ref = tuple[ResourceKind, str, str]


# One object in a fingerprint: (plural, name, resourceVersion); a tuple, not a formatted line
# (two fingerprints per reconcile: formatting them was ~2 % of a step's CPU)
Entry = tuple[str, str, str]


def entry(kind: ResourceKind, obj: JsonObject) -> Entry:
    """One object's entry in a fingerprint: its kind's plural, name and resourceVersion."""
    metadata = obj.get("metadata") or {}
    return (kind.plural, str(metadata.get("name", "")),
            str(metadata.get("resourceVersion", "")))


def digest(fingerprint: tuple[Entry, ...]) -> int:
    """A 64-bit hash standing for a fingerprint (what ``_settled`` keeps per Rollout): only
    ever compared within this process, with the same Rollout's previous one (a collision,
    one chance in 2**64 per comparison, would delay a reconcile until the next change or
    resync)."""
    return hash(fingerprint)


class RolloutController:
    def __init__(
        self,
        *,
        client: KubeClient,
        caches: Caches,
        routers: TrafficRouters,
        writes: RolloutWrites,
        clock: Clock,
        telemetry: Telemetry,
        instance_id: str | None,
        defaults: RolloutDefaults,
        workers: int,
    ) -> None:
        self.kind = KIND
        self.workers = workers
        self._client = client
        self._caches = caches
        self._routers = routers
        self._writes = writes
        self._clock = clock
        self._telemetry = telemetry
        self._instance_id = instance_id
        self._defaults = defaults
        self._pods = RolloutPods(client)
        # per Rollout: a digest of the inputs as our last plan left them, and when that plan
        # wants to be woken; a reconcile seeing the same inputs before then has nothing to do
        # (our own writes' watch events, resyncs)
        self._settled: dict[ObjectKey, tuple[int, datetime | None]] = {}
        # per Rollout: the spec parsed at (uid, generation)
        self._parsed: dict[ObjectKey, tuple[tuple[str, Any, Any], Rollout]] = {}
        # per Rollout: the views of the ReplicaSets it last observed
        self._replica_set_views = ReplicaSetViews()

    # -- registration ------------------------------------------------------------------------
    def register(self, caches: Caches) -> None:
        """Declare the kinds this controller reads and how their changes map to Rollouts."""
        caches.watch(ROLLOUT, on_change=lambda event, obj: (key_of(KIND, obj),))
        caches.watch(REPLICA_SET, index_owners=True, on_change=self._keys_of_replica_set,
                     keep=replica_set_as_read)
        caches.watch(ANALYSIS_RUN, index_owners=True, on_change=self._keys_of_owned)
        caches.watch(SERVICE, keep=service_as_read)
        # the Deployments workloadRefs name (woken through the reference index); another
        # controller may watch them too: the registrations merge
        caches.watch(DEPLOYMENT)
        caches.watch(ANALYSIS_TEMPLATE)
        # A namespace-bound RoleBinding cannot list cluster-scoped kinds: readiness does not
        # wait for them (a Rollout naming a missing one is InvalidSpec until it is seen).
        caches.watch(CLUSTER_ANALYSIS_TEMPLATE, optional=True)
        for kind in self._routers.kinds:
            caches.watch(kind, optional=True)

    def _keys_of_owned(self, event_type: str, obj: JsonObject) -> Iterable[ObjectKey]:
        owner = controller_key(obj)
        return (owner,) if owner is not None and owner.kind == KIND else ()

    def _keys_of_replica_set(self, event_type: str, obj: JsonObject) -> Iterable[ObjectKey]:
        owner = controller_key(obj)
        if owner is not None:
            return (owner,) if owner.kind == KIND else ()
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        # an orphan may be adopted by any Rollout of its namespace
        return [key_of(KIND, rollout) for rollout in self._caches.items(ROLLOUT, namespace)]

    def resync_keys(self) -> Iterable[ObjectKey]:
        return [key_of(KIND, obj) for obj in self._caches.items(ROLLOUT)]

    def shard_of(self, key: ObjectKey) -> str:
        return key.path

    def handles(self, obj: JsonObject) -> bool:
        """Argo's --instance-id rule: the label must equal ours (or be absent if we have none)."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return labels.get(CONTROLLER_INSTANCE_LABEL) == self._instance_id

    def controls_run(self, run: JsonObject) -> bool:
        """An AnalysisRun is ours when the Rollout controlling it is one we handle."""
        owner = controller_key(run)
        if owner is None or owner.kind != KIND:
            return False
        rollout = self._caches.get(ROLLOUT, owner.namespace, owner.name)
        return rollout is not None and self.handles(rollout)

    # -- reconciling -------------------------------------------------------------------------
    async def reconcile(self, key: ObjectKey) -> Outcome:
        obj = self._caches.get(ROLLOUT, key.namespace, key.name)
        if obj is None or not self.handles(obj):
            self._forget(key)
            return DONE
        inputs = self.fingerprint(key, obj)
        settled = self._settled.get(key)
        if settled is not None and settled[0] == digest(inputs) and (
                settled[1] is None or self._clock.now() < settled[1]):
            # the same inputs as after our last plan's writes: a fixed point
            return Outcome(requeue_at=settled[1])
        started = time.perf_counter()
        ours: set[Entry] = set()  # fingerprint entries of the objects this reconcile writes
        try:
            plan, rollout = await self._plan(key, obj)
            for kind, written in await self._writes.apply(obj, rollout, plan):
                if kind is not DEPLOYMENT:  # a scaled workload's new generation is an input
                    ours.add(entry(kind, written))
        except (Conflict, Invalid, NotFound, RouteError) as error:
            self._settled.pop(key, None)
            logger.info("replanning %s after a conflict: %s", key.path, error,
                        extra={"rollout": key.path})
            await self._writes.refresh(key.namespace, key.name)
            return Outcome(failed=True, retry_now=True)
        except KubeError as error:
            self._settled.pop(key, None)
            self._telemetry.count_reconcile_error(key.namespace, key.name)
            logger.warning("reconcile of %s failed: %s", key.path, error,
                           extra={"rollout": key.path})
            return Outcome(failed=True)
        finally:
            self._telemetry.observe_reconcile(namespace=key.namespace, name=key.name,
                                              seconds=time.perf_counter() - started)
        at_fixed_point = self._settle(key, plan, before=set(inputs), ours=ours)
        self._observe_metrics(key, rollout, plan)
        # no await from the settling to here: a wake-up meanwhile came from our own writes
        return Outcome(requeue_at=plan.requeue_at, again=plan.again, settled=at_fixed_point)

    def _settle(self, key: ObjectKey, plan: Plan, *, before: set[Entry],
                ours: set[Entry]) -> bool:
        """Remember the inputs our writes left, unless someone else moved meanwhile; whether
        they were remembered (a reconcile now would find this same fixed point)."""
        current = self._caches.get(ROLLOUT, key.namespace, key.name)
        if plan.again or current is None:
            # stopped early on purpose, or deleted meanwhile (the next reconcile forgets it)
            self._settled.pop(key, None)
            return False
        after = self.fingerprint(key, current)
        if set(after) - before <= ours:
            # nothing changed but what we wrote: planning again would find nothing to do
            self._settled[key] = (digest(after), plan.requeue_at)
            return True
        self._settled.pop(key, None)  # something else moved meanwhile: look again
        return False

    def fingerprint(self, key: ObjectKey, rollout: JsonObject) -> tuple[Entry, ...]:
        """The resourceVersions of everything a plan of this Rollout reads: the Rollout, the
        ReplicaSets and AnalysisRuns it may own or adopt, and what it last referenced. Equal
        fingerprints mean equal inputs (time aside)."""
        uid = str((rollout.get("metadata") or {}).get("uid", ""))
        caches, namespace = self._caches, key.namespace
        versions = [entry(ROLLOUT, rollout)]
        replica_sets = caches.owned(REPLICA_SET, namespace=namespace, uid=uid)
        replica_sets += caches.orphans(REPLICA_SET, namespace=namespace)
        versions += sorted([entry(REPLICA_SET, rs) for rs in replica_sets])
        runs = caches.owned(ANALYSIS_RUN, namespace=namespace, uid=uid)
        if runs:
            versions += sorted([entry(ANALYSIS_RUN, run) for run in runs])
        for kind, ref_namespace, name in caches.references(key):  # sorted
            found = caches.get(kind, ref_namespace or None, name)
            versions.append((kind.plural, name, resource_version(found)))
        return tuple(versions)

    # -- planning -------------------------------------------------------------------------
    async def _plan(self, key: ObjectKey, obj: JsonObject) -> tuple[Plan, Rollout | None]:
        now = self._clock.now()
        try:
            rollout = self._parse(key, obj)
        except InvalidSpecError as error:
            # a missing Deployment is watched: creating it recovers the Rollout
            self._caches.set_references(key, self._workload_refs(key, obj))
            return plan_invalid_spec(obj, str(error), now=now), None
        router = self._routers.for_rollout(rollout)
        refs = [*references(rollout, router), *self._workload_refs(key, obj)]
        try:
            specs = analysis_specs(rollout, obj, self._caches)
        except InvalidSpecError as error:
            # the templates it names are watched even when missing: creating one recovers it
            self._caches.set_references(key, refs)
            return plan_invalid_spec(obj, str(error), now=now), None
        self._caches.set_references(key, refs)
        observed = observe(rollout, self._caches, router=router, specs=specs,
                           workload=self._workload(key, obj),
                           replica_set_views=functools.partial(self._replica_set_views.views, key))
        if needs_restart(restart_at=rollout.restart_at, now=now,
                         restarted_at=parse_time(str(rollout.status.get("restartedAt", "")))):
            # listed now, not watched: only a restarting Rollout needs its pods
            observed = dataclasses.replace(observed,
                                           pods=await self._pods.views(rollout, now=now))
        plan = plan_rollout(rollout, observed, now=now,
                            resource_version=(obj.get("metadata") or {}).get("resourceVersion"))
        return plan, rollout

    def _workload_refs(self, key: ObjectKey, obj: JsonObject) -> list[Ref]:
        """The Deployment the Rollout's workloadRef names, if it names a valid one."""
        try:
            named = workload_ref_of(obj.get("spec") or {})
        except InvalidSpecError:
            return []
        return [] if named is None else [(DEPLOYMENT, key.namespace, named[0])]

    def _workload(self, key: ObjectKey, obj: JsonObject) -> JsonObject | None:
        refs = self._workload_refs(key, obj)
        return self._caches.get(DEPLOYMENT, key.namespace, refs[0][2]) if refs else None

    def _parse(self, key: ObjectKey, obj: JsonObject) -> Rollout:
        """``parse_rollout``, with the spec's part reused while the generation (and that of
        the Deployment a workloadRef names) is unchanged (a spec change always bumps it);
        status and annotations are always the object's."""
        metadata = obj.get("metadata") or {}
        workload = self._workload(key, obj)
        workload_generation = None if workload is None else (
            workload.get("metadata") or {}).get("generation")
        version = (str(metadata.get("uid", "")), metadata.get("generation"), workload_generation)
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version and version[1] is not None:
            return dataclasses.replace(cached[1], status=obj.get("status") or {},
                                       annotations=metadata.get("annotations") or {})
        rollout = parse_rollout(obj, self._defaults, workload=workload)
        # hashed once per generation, not at every plan (a template's JSON, sorted, digested)
        rollout = dataclasses.replace(rollout, template_hash=pod_template_hash(rollout.template),
                                      steps_hash=steps_hash(rollout.canary.raw_steps))
        # kept without the status and annotations, which a newer copy replaces anyway (kept,
        # they would hold the whole status of an old copy alive)
        self._parsed[key] = (version, dataclasses.replace(rollout, status={}, annotations={}))
        return rollout

    # -- bookkeeping ----------------------------------------------------------------------
    def _forget(self, key: ObjectKey) -> None:
        self._settled.pop(key, None)
        self._parsed.pop(key, None)
        self._replica_set_views.forget(key)
        self._caches.set_references(key, ())
        self._telemetry.forget_rollout(key.namespace, key.name)

    def _observe_metrics(self, key: ObjectKey, rollout: Rollout | None, plan: Plan) -> None:
        self._telemetry.observe_rollout(
            namespace=key.namespace, name=key.name, phase=plan.phase or "Progressing",
            strategy="Canary", weight=plan.canary_weight,
            desired=rollout.replicas if rollout is not None else 0,
            available=int(plan.status.get("availableReplicas", 0)),
        )
