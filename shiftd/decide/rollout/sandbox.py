"""An in-memory stand-in for the cluster, for running the planner through a whole update.

Every write a plan asks for is applied to plain values as the API server would apply it; pods
become available at once; the router is simulated (a weight, and the subsets a subset router
would select); a step's AnalysisRun succeeds at once while background runs keep running. Time
is a value: ``wait`` jumps to the planner's wake-up time or promotes a pause the way
``kubectl argo rollouts promote`` does (``operator.promote_patch``). Used by ``timeline``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shiftd.common.mergepatch import merge_patch
from shiftd.decide.analysis.runs import STEP, AnalysisRunView
from shiftd.decide.rollout.actions import (
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeleteReplicaSet,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutStatus,
    PatchService,
    Plan,
    SetTraffic,
)
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, ServiceView
from shiftd.decide.rollout.operator import promote_patch
from shiftd.decide.rollout.plan import plan_rollout
from shiftd.decide.rollout.status import CANARY_PAUSE_REASON, format_time
from shiftd.decide.traffic import ManagedRoute, TrafficObservation
from shiftd.model.argo.rollout import (
    POD_TEMPLATE_HASH_LABEL,
    Rollout,
    RolloutDefaults,
    parse_rollout,
)

Obj = dict[str, Any]
PLAN_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the simulated clock starts here
# Marks the simulated previous revision's template, so its hash differs from the Rollout's.
_PREVIOUS_MARK = "shiftd.io/plan-previous-revision"
_MAX_RECONCILES = 5000
_UID = "shiftd-plan"


class TimelineError(ValueError):
    """The simulation could not reach full promotion; the message says where it stopped."""


@dataclass
class Sandbox:
    """The objects one Rollout's reconciles read and write, as plain values."""

    rollout: Obj
    replica_sets: dict[str, Obj]
    services: dict[str, Obj]
    weight: int
    subsets: tuple[str | None, str | None]  # what a subset router's canary and stable select
    now: datetime
    defaults: RolloutDefaults
    analysis_runs: dict[str, Obj] = field(default_factory=dict)
    reconciles: int = 0
    managed_routes: tuple[ManagedRoute, ...] = ()  # what the last SetTraffic left in place

    def parsed(self) -> Rollout:
        return parse_rollout(self.rollout, self.defaults)

    def observe(self, rollout: Rollout) -> Observed:
        traffic = None
        if rollout.canary.traffic_routed:
            traffic = TrafficObservation(canary_weight=self.weight,
                                         routes_by_subset=_routes_by_subset(rollout),
                                         canary_subset_hash=self.subsets[0],
                                         stable_subset_hash=self.subsets[1],
                                         managed_routes=self.managed_routes)
        names = [n for n in (rollout.canary.canary_service, rollout.canary.stable_service) if n]
        return Observed(
            replica_sets=tuple(ReplicaSetView.from_object(rs, rollout_uid=rollout.uid)
                               for rs in self.replica_sets.values()),
            services={name: ServiceView.from_object(self.services[name]) for name in names},
            traffic=traffic,
            analysis_runs=tuple(AnalysisRunView.from_object(run)
                                for run in self.analysis_runs.values()),
        )

    def plan(self) -> tuple[Rollout, Plan]:
        rollout = self.parsed()
        self.reconciles += 1
        if self.reconciles > _MAX_RECONCILES:
            raise TimelineError("the planner did not settle")
        plan = plan_rollout(rollout, self.observe(rollout), now=self.now,
                            resource_version=self.rollout["metadata"]["resourceVersion"])
        return rollout, plan

    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            if isinstance(action, CreateReplicaSet):
                self.replica_sets[action.name] = copy.deepcopy(action.body)
            elif isinstance(action, PatchReplicaSet):
                self.replica_sets[action.name] = merge_patch(self.replica_sets[action.name],
                                                             action.patch)
            elif isinstance(action, DeleteReplicaSet):
                self.replica_sets.pop(action.name, None)
            elif isinstance(action, PatchService):
                self.services[action.name] = merge_patch(self.services[action.name],
                                                         action.patch)
            elif isinstance(action, SetTraffic):
                self.weight = action.canary_weight
                self.subsets = (action.canary_hash, action.stable_hash)
                self.managed_routes = action.managed_routes
            elif isinstance(action, PatchRolloutStatus):
                self.patch_rollout({"status": action.patch})
            elif isinstance(action, CreateAnalysisRun):
                self.analysis_runs[action.name] = self._run_started(action.body)
            elif isinstance(action, PatchAnalysisRun):
                self.analysis_runs[action.name] = merge_patch(self.analysis_runs[action.name],
                                                              action.patch)
            elif isinstance(action, DeleteAnalysisRun):
                self.analysis_runs.pop(action.name, None)
        for rs in self.replica_sets.values():  # the kubelet: every pod available at once
            replicas = int(rs["spec"].get("replicas", 0))
            rs["status"] = {"replicas": replicas, "readyReplicas": replicas,
                            "availableReplicas": replicas}

    def _run_started(self, body: Obj) -> Obj:
        """Play the analysis task: a step's run succeeds at once, background runs keep
        running (until the planner terminates them at promotion)."""
        run = copy.deepcopy(body)
        run["metadata"]["creationTimestamp"] = format_time(self.now)
        kind = (run["metadata"].get("labels") or {}).get("rollout-type")
        run["status"] = {"phase": "Successful" if kind == STEP else "Running"}
        return run

    def patch_rollout(self, patch: Obj) -> None:
        self.rollout = merge_patch(self.rollout, patch)
        metadata = self.rollout["metadata"]
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)
        if "spec" in patch:
            metadata["generation"] = int(metadata.get("generation", 1)) + 1

    def replace_template(self, template: Obj) -> None:
        self.rollout["spec"]["template"] = copy.deepcopy(template)
        self.patch_rollout({})
        self.rollout["metadata"]["generation"] += 1

    def spec_replicas(self, pod_hash: str | None) -> int:
        for rs in self.replica_sets.values():
            labels = (rs.get("metadata") or {}).get("labels") or {}
            if pod_hash and labels.get(POD_TEMPLATE_HASH_LABEL) == pod_hash:
                return int(rs["spec"].get("replicas", 0))
        return 0

    @property
    def status(self) -> Obj:
        return dict(self.rollout.get("status") or {})

    def settled(self) -> bool:
        """Fully promoted and every other revision scaled down."""
        status = self.status
        current = status.get("currentPodHash")
        if not current or status.get("stableRS") != current:
            return False
        return all(int(rs["spec"].get("replicas", 0)) == 0 for rs in self.replica_sets.values()
                   if ((rs.get("metadata") or {}).get("labels") or {})
                   .get(POD_TEMPLATE_HASH_LABEL) != current)

    def wait(self, rollout: Rollout, plan: Plan) -> None:
        """Nothing to write: let time pass to the planner's wake-up, or promote a pause."""
        if plan.requeue_at is not None and plan.requeue_at > self.now:
            self.now = plan.requeue_at
            return
        paused_at_step = any(c.get("reason") == CANARY_PAUSE_REASON
                             for c in self.status.get("pauseConditions") or [])
        if paused_at_step or rollout.paused:
            patch = promote_patch(self.rollout)
            for part in (patch.status, patch.spec):
                if part is not None:
                    self.patch_rollout(part)
            return
        index = self.status.get("currentStepIndex")
        raise TimelineError(f"the rollout stopped at step {index} with nothing to wait for "
                            f"(phase {plan.phase or 'unknown'}: {plan.status.get('message', '')})")


def _synthetic_services(rollout: Rollout) -> dict[str, Obj]:
    labels = dict(rollout.selector.get("matchLabels") or {})
    return {name: {"metadata": {"name": name}, "spec": {"selector": dict(labels)}}
            for name in (rollout.canary.canary_service, rollout.canary.stable_service) if name}


def _previous_template(template: Obj) -> Obj:
    previous = copy.deepcopy(template)
    metadata = previous.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), _PREVIOUS_MARK: "true"}
    return previous


def _fresh_rollout(rollout_obj: Mapping[str, Any]) -> Obj:
    rollout = copy.deepcopy(dict(rollout_obj))
    metadata = rollout.setdefault("metadata", {})
    metadata.setdefault("namespace", "default")
    metadata.update(uid=_UID, generation=1, resourceVersion="1")
    rollout["status"] = {}
    spec = rollout.setdefault("spec", {})
    spec.pop("paused", None)
    return rollout


def _settle(sandbox: Sandbox) -> None:
    """Reconcile, wait and promote until the rollout is done and the old pods are gone."""
    while True:
        rollout, plan = sandbox.plan()
        if plan.actions:
            sandbox.apply(plan)
        elif sandbox.settled():
            return
        else:
            sandbox.wait(rollout, plan)


def _routes_by_subset(rollout: Rollout) -> bool:
    """What ``IstioRouter.observe`` reports: subsets move when a DestinationRule is named."""
    return rollout.canary.istio is not None and rollout.canary.istio.destination_rule is not None


def updated_sandbox(
    rollout_obj: Mapping[str, Any], defaults: RolloutDefaults
) -> tuple[Sandbox, Rollout]:
    """A sandbox where a previous revision is stable at full scale and ``rollout_obj``'s
    template has just been set, as after a ``set image``; and the Rollout, parsed.

    Raises ``InvalidSpecError`` for a Rollout the daemon would not act on.
    """
    target = _fresh_rollout(rollout_obj)
    parsed = parse_rollout(target, defaults)
    previous = copy.deepcopy(target)
    previous["spec"]["template"] = _previous_template(parsed.template)
    sandbox = Sandbox(rollout=previous, replica_sets={}, services=_synthetic_services(parsed),
                      weight=0, subsets=(None, None), now=PLAN_EPOCH, defaults=defaults)
    _settle(sandbox)  # the first revision goes straight to stable
    sandbox.replace_template(parsed.template)
    return sandbox, parsed
