"""A pure, in-memory stand-in for the cluster, to drive the planner through whole rollouts.

It applies a ``Plan``'s actions to plain dicts the way the API server and the ReplicaSet
controller would (pods become available at once unless held), with time as a value. Only the
unit tests of the pure core use it; integration tests use the real HTTP emulator.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from shiftd.controllers.rollout_inputs import replica_set_as_read
from shiftd.decide.analysis.runs import AnalysisRunView, merge_run_spec
from shiftd.decide.rollout.actions import (
    AnnotateRollout,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeleteReplicaSet,
    EvictPods,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutStatus,
    PatchService,
    Plan,
    ScaleDeployment,
    SetTraffic,
)
from shiftd.decide.rollout.observed import (
    Observed,
    PodView,
    ReplicaSetView,
    ServiceView,
    WorkloadView,
)
from shiftd.decide.rollout.plan import plan_invalid_spec, plan_rollout
from shiftd.decide.rollout.status import format_time
from shiftd.decide.traffic import TrafficObservation
from shiftd.model.argo.rollout import AnalysisStep, InvalidSpecError, parse_rollout
from shiftd.traffic.istio.routes import Destinations, RouteError, observe_weight, weight_patch

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def apply_json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        *parents, last = operation["path"].lstrip("/").split("/")
        node: Any = document
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        key: Any = int(last) if isinstance(node, list) else last
        if operation["op"] == "test":
            assert node[key] == operation["value"], operation
        else:
            node[key] = operation["value"]


def load_example(folder: str) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted((EXAMPLES / folder).glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


@dataclass
class World:
    rollout: dict[str, Any]
    services: dict[str, dict[str, Any]]
    virtual_services: dict[str, dict[str, Any]]
    replica_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    held: set[str] = field(default_factory=set)  # ReplicaSets whose pods never get ready
    events: list[str] = field(default_factory=list)
    writes: int = 0
    # The daemon sees no watch event for its own writes, so a plan must leave nothing for the
    # next plan to do on the same observed state (unless it says ``again``); checked here.
    check_fixed_point: bool = True

    # Simulate a router that routes by subsets (as Istio's with a DestinationRule): it reports
    # the hashes its canary and stable subsets select, and SetTraffic moves them.
    routes_by_subset: bool = False
    subsets: tuple[str | None, str | None] = (None, None)  # canary, stable
    # the labels besides the hash each subset selects on (canary, stable)
    subset_labels: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = ((), ())

    analysis_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Pods, only once a test tracks them (``track_pods``): the planner then sees them, as the
    # runtime would list them for a restartAt restart. Each is (ReplicaSet name, created).
    pods: dict[str, tuple[str, datetime]] | None = None
    evicted: list[str] = field(default_factory=list)
    # The Deployment a workloadRef names (None: none, or not found).
    deployment: dict[str, Any] | None = None

    def parsed(self) -> Any:
        """The Rollout as the daemon parses it (its workloadRef resolved)."""
        return parse_rollout(self.rollout, workload=self.deployment)

    @classmethod
    def from_example(cls, folder: str, *, with_analysis: bool = False) -> World:
        documents = load_example(folder)
        rollouts = [d for d in documents if d["kind"] == "Rollout"
                    and ("analysis" in d["spec"]["strategy"]["canary"]) == with_analysis]
        rollout = copy.deepcopy(rollouts[0])
        rollout["metadata"].setdefault("namespace", "default")
        rollout["metadata"].update(uid="uid-1", generation=1)
        rollout["metadata"].setdefault("resourceVersion", "1")
        return cls(
            rollout=rollout,
            services={d["metadata"]["name"]: copy.deepcopy(d) for d in documents
                      if d["kind"] == "Service"},
            virtual_services={d["metadata"]["name"]: copy.deepcopy(d) for d in documents
                              if d["kind"] == "VirtualService"},
            templates={(d["kind"], d["metadata"]["name"]): copy.deepcopy(d) for d in documents
                       if d["kind"] in ("AnalysisTemplate", "ClusterAnalysisTemplate")},
        )

    # -- observation ----------------------------------------------------------------------
    def plan(self) -> Plan:
        try:
            parsed = self.parsed()
        except InvalidSpecError as error:
            return plan_invalid_spec(self.rollout, str(error), now=self.now)
        traffic = None
        if parsed.canary.istio is not None:
            ref = parsed.canary.istio.virtual_services[0]
            vs = self.virtual_services.get(ref.name)
            try:
                if vs is None:
                    raise RouteError(f"VirtualService {ref.name!r} not found")
                traffic = TrafficObservation(
                    canary_weight=observe_weight(vs, ref, self._destinations(parsed)),
                    routes_by_subset=self.routes_by_subset,
                    canary_subset_hash=self.subsets[0], stable_subset_hash=self.subsets[1],
                    canary_subset_labels=self.subset_labels[0],
                    stable_subset_labels=self.subset_labels[1])
            except RouteError as error:
                traffic = TrafficObservation(canary_weight=0, error=str(error))
        specs: dict[str, Any] = {}
        try:
            if parsed.canary.background_analysis:
                specs["background"] = merge_run_spec(
                    parsed.canary.background_analysis, templates=self.templates,
                    rollout_obj=self.rollout, path="spec.strategy.canary.analysis")
            for index, step in enumerate(parsed.canary.steps):
                if isinstance(step, AnalysisStep):
                    specs[f"step-{index}"] = merge_run_spec(
                        step.raw, templates=self.templates, rollout_obj=self.rollout,
                        path=f"spec.strategy.canary.steps[{index}].analysis")
        except InvalidSpecError as error:
            return plan_invalid_spec(self.rollout, str(error), now=self.now)
        observed = Observed(
            analysis_runs=tuple(AnalysisRunView.from_object(run)
                                for run in self.analysis_runs.values()),
            analysis_specs=specs,
            # as the daemon's cache keeps them: the template's spec as a digest
            replica_sets=tuple(ReplicaSetView.from_object(
                replica_set_as_read(copy.deepcopy(rs)), rollout_uid="uid-1")
                for rs in self.replica_sets.values()),
            services={name: (ServiceView.from_object(svc) if svc else None)
                      for name, svc in self.services.items()}
            | {n: None for n in (parsed.canary.canary_service, parsed.canary.stable_service)
               if n and n not in self.services},
            traffic=traffic,
            workload=(WorkloadView.from_object(self.deployment)
                      if self.deployment is not None and parsed.workload_ref else None),
            pods=None if self.pods is None else tuple(
                PodView(name=name, owner=owner, created=created,
                        available=owner not in self.held, deleting=False)
                for name, (owner, created) in self.pods.items()),
        )
        return plan_rollout(parsed, observed, now=self.now,
                            resource_version=self.rollout["metadata"]["resourceVersion"])

    @staticmethod
    def _destinations(parsed: Any) -> Destinations:
        rule = parsed.canary.istio.destination_rule if parsed.canary.istio else None
        return Destinations(canary_service=parsed.canary.canary_service,
                            stable_service=parsed.canary.stable_service,
                            canary_subset=rule["canarySubsetName"] if rule else None,
                            stable_subset=rule["stableSubsetName"] if rule else None)

    # -- effects --------------------------------------------------------------------------
    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            self.writes += 1
            if isinstance(action, CreateReplicaSet):
                body = copy.deepcopy(action.body)
                self.replica_sets[action.name] = body
            elif isinstance(action, PatchReplicaSet):
                self.replica_sets[action.name] = merge(self.replica_sets[action.name],
                                                       action.patch)
            elif isinstance(action, DeleteReplicaSet):
                del self.replica_sets[action.name]
            elif isinstance(action, PatchService):
                self.services[action.name] = merge(self.services[action.name], action.patch)
            elif isinstance(action, AnnotateRollout):
                self.rollout["metadata"] = merge(self.rollout["metadata"],
                                                 {"annotations": action.annotations})
                self._bump()
            elif isinstance(action, ScaleDeployment):
                assert self.deployment is not None
                assert action.resource_version == self.deployment["metadata"]["resourceVersion"]
                self.deployment = merge(self.deployment, {"spec": {"replicas": action.replicas}})
                self.deployment["metadata"]["resourceVersion"] += "+"
            elif isinstance(action, SetTraffic):
                parsed = self.parsed()
                assert parsed.canary.istio is not None
                ref = parsed.canary.istio.virtual_services[0]
                vs = self.virtual_services[ref.name]
                apply_json_patch(vs, weight_patch(vs, ref, self._destinations(parsed),
                                                  action.canary_weight))
                if self.routes_by_subset:
                    self.subsets = (action.canary_hash, action.stable_hash)
            elif isinstance(action, CreateAnalysisRun):
                body = copy.deepcopy(action.body)
                body["metadata"]["creationTimestamp"] = format_time(self.now)
                self.analysis_runs[action.name] = body
            elif isinstance(action, PatchAnalysisRun):
                self.analysis_runs[action.name] = merge(self.analysis_runs[action.name],
                                                        action.patch)
            elif isinstance(action, DeleteAnalysisRun):
                del self.analysis_runs[action.name]
            elif isinstance(action, EvictPods):
                assert self.pods is not None
                for name in action.names:
                    del self.pods[name]
                self.evicted.extend(action.names)
            elif isinstance(action, PatchRolloutStatus):
                assert action.resource_version == self.rollout["metadata"]["resourceVersion"]
                self.rollout["status"] = merge(self.rollout.get("status") or {}, action.patch)
                self._bump()
        self.events.extend(event.message for event in plan.events)
        scaled = any(isinstance(a, CreateReplicaSet | EvictPods) or (
            isinstance(a, PatchReplicaSet) and "spec" in a.patch) for a in plan.actions)
        # (a ReplicaSet whose size changed, or whose pods were evicted, always gets a status
        # update from its controller, and that event plans again)
        if self.check_fixed_point and plan.actions and not plan.again and not scaled:
            follow_up = self.plan()
            assert not follow_up.actions, (
                "the plan is not a fixed point: planning again on what it wrote wants "
                f"{follow_up.actions}")
        self._kubelet()

    def _bump(self) -> None:
        metadata = self.rollout["metadata"]
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)

    def track_pods(self) -> None:
        self.pods = {}
        self._kubelet()

    def _replace_pods(self) -> None:
        """The ReplicaSet controller: each ReplicaSet gets its spec's number of pods."""
        assert self.pods is not None
        for name, rs in self.replica_sets.items():
            mine = sorted(pod for pod, (owner, _) in self.pods.items() if owner == name)
            for extra in mine[rs["spec"]["replicas"]:]:
                del self.pods[extra]
            for index in range(len(mine), rs["spec"]["replicas"]):
                pod = f"{name}-{self.now:%H%M%S}-{index}"
                while pod in self.pods:
                    pod += "x"
                self.pods[pod] = (name, self.now)

    def _kubelet(self) -> None:
        if self.pods is not None:
            self._replace_pods()
        for name, rs in self.replica_sets.items():
            replicas = rs["spec"]["replicas"]
            ready = 0 if name in self.held else replicas
            rs["status"] = {"replicas": replicas, "readyReplicas": ready,
                            "availableReplicas": ready}

    def settle(self, *, limit: int = 50) -> Plan:
        """Reconcile until a plan asks for no writes; returns that quiet plan."""
        for _ in range(limit):
            plan = self.plan()
            if not plan.actions:
                return plan
            self.apply(plan)
        raise AssertionError("the planner did not settle")

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def edit_spec(self, **changes: Any) -> None:
        self.rollout["spec"] = merge(self.rollout["spec"], changes)
        self.rollout["metadata"]["generation"] += 1
        self._bump()

    def set_image(self, image: str) -> None:
        template = copy.deepcopy(self.rollout["spec"]["template"])
        for container in template["spec"]["containers"]:
            container["image"] = image
        self.rollout["spec"]["template"] = template
        self.rollout["metadata"]["generation"] += 1
        self._bump()

    def finish_run(self, name: str, phase: str, message: str = "") -> None:
        """Play the analysis task: give a run its verdict."""
        run = self.analysis_runs[name]
        run["status"] = {"phase": phase, **({"message": message} if message else {})}

    def patch_status(self, patch: dict[str, Any]) -> None:
        self.rollout["status"] = merge(self.rollout.get("status") or {}, patch)
        self._bump()

    # -- reading --------------------------------------------------------------------------
    def weights(self, name: str | None = None) -> tuple[int, int]:
        vs = self.virtual_services[name or next(iter(self.virtual_services))]
        route = vs["spec"]["http"][0]["route"]
        by_host = {d["destination"]["host"]: d.get("weight", 0) for d in route}
        parsed = self.parsed()
        return (by_host[parsed.canary.stable_service], by_host[parsed.canary.canary_service])

    def replicas_by_image(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for rs in self.replica_sets.values():
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            result[image] = result.get(image, 0) + rs["spec"]["replicas"]
        return result

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.rollout.get("status") or {})
