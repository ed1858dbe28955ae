"""Plans you can read before anything moves: the daemon's own planner, run in memory.

``rollout_timeline`` answers "what will this Rollout do?" by driving ``plan_rollout`` — the
very function the daemon calls — through a whole update in a pure, in-memory stand-in for the
cluster: every write a plan asks for is applied to plain values, pods become available at
once, time jumps to the end of each timed pause, and a pause without a duration is promoted
the way ``kubectl argo rollouts promote`` promotes it (``decide.operator.promote_patch``).
Step analysis is assumed to succeed. The update starts from a stable revision at full scale,
as after a ``set image``; each step records the weight and the replica counts the daemon
would have written when that step completes, so the numbers are the daemon's, not a
re-derivation.

``next_action`` answers "what will shiftd do now?" from observed state: one ``plan_rollout``
call, its actions, the weight and counts they lead to, and a sentence saying why.

Both are pure; ``now`` is an argument and nothing here reads a clock.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shiftd.common.mergepatch import merge_patch
from shiftd.decide.analysis.runs import STEP, AnalysisRunView
from shiftd.decide.rollout.actions import (
    Action,
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
from shiftd.decide.rollout.hashing import pod_template_hash
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, ServiceView, parse_time
from shiftd.decide.rollout.operator import promote_patch
from shiftd.decide.rollout.plan import plan_rollout, weight_at
from shiftd.decide.rollout.status import CANARY_PAUSE_REASON, format_time
from shiftd.decide.traffic import TrafficObservation
from shiftd.model.argo.rollout import (
    POD_TEMPLATE_HASH_LABEL,
    AnalysisStep,
    PauseStep,
    Rollout,
    RolloutDefaults,
    SetWeightStep,
    parse_rollout,
)

__all__ = [
    "AnalysisRef",
    "NextAction",
    "StepPlan",
    "Timeline",
    "TimelineError",
    "action_json",
    "analysis_at",
    "next_action",
    "rollout_timeline",
]

Obj = dict[str, Any]
PLAN_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the simulated clock starts here
# Marks the simulated previous revision's template, so its hash differs from the Rollout's.
_PREVIOUS_MARK = "shiftd.io/plan-previous-revision"
_MAX_RECONCILES = 5000
_UID = "shiftd-plan"


class TimelineError(ValueError):
    """The simulation could not reach full promotion; the message says where it stopped."""


@dataclass(frozen=True, slots=True)
class AnalysisRef:
    """Analysis running during a step: background (``canary.analysis``) or the step's own."""

    kind: Literal["background", "step"]
    templates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One step as the daemon will carry it out, at the moment the step completes."""

    index: int
    step: Obj  # as written in the Rollout
    canary_weight: int  # routed to the canary (basic canary: the weight the pods approximate)
    canary_replicas: int  # spec.replicas of the canary ReplicaSet
    stable_replicas: int  # spec.replicas of the stable ReplicaSet
    pause_seconds: float | None  # a timed pause's length; None otherwise
    manual: bool  # a pause without a duration: waits for ``promote``
    analysis: tuple[AnalysisRef, ...]
    at_seconds: float  # when the step completes, counted from the update's start


@dataclass(frozen=True, slots=True)
class Timeline:
    steps: tuple[StepPlan, ...]
    replicas: int
    traffic_routed: bool
    promoted_at_seconds: float  # when the new revision became stable
    settled_at_seconds: float  # when the old revision was scaled down
    reconciles: int  # planner calls the simulation took


def _template_names(entries: Any) -> tuple[str, ...]:
    names = []
    for entry in entries or []:
        if isinstance(entry, Mapping):
            name = entry.get("templateName") or entry.get("clusterTemplateName")
            if name:
                names.append(str(name))
    return tuple(names)


def analysis_at(rollout: Rollout, index: int) -> tuple[AnalysisRef, ...]:
    """The analysis running while step ``index`` is current: background analysis from its
    ``startingStep`` on, and the step's own analysis for an analysis step."""
    refs: list[AnalysisRef] = []
    background = rollout.canary.background_analysis
    if isinstance(background, Mapping):
        starting = background.get("startingStep") or 0
        if isinstance(starting, int) and index >= starting:
            refs.append(AnalysisRef("background", _template_names(background.get("templates"))))
    step = rollout.canary.steps[index] if index < len(rollout.canary.steps) else None
    if isinstance(step, AnalysisStep):
        refs.append(AnalysisRef("step", _template_names(step.raw.get("templates"))))
    return tuple(refs)


# --- the in-memory cluster -------------------------------------------------------------------

@dataclass
class _Cluster:
    """The objects one Rollout's reconciles read and write, as plain values."""

    rollout: Obj
    replica_sets: dict[str, Obj]
    services: dict[str, Obj]
    weight: int
    subsets: tuple[str | None, str | None]  # canary and stable DestinationRule subset hashes
    now: datetime
    defaults: RolloutDefaults
    analysis_runs: dict[str, Obj] = field(default_factory=dict)
    reconciles: int = 0

    def parsed(self) -> Rollout:
        return parse_rollout(self.rollout, self.defaults)

    def observe(self, rollout: Rollout) -> Observed:
        traffic = None
        if rollout.canary.traffic_routed:
            traffic = TrafficObservation(canary_weight=self.weight,
                                         canary_subset_hash=self.subsets[0],
                                         stable_subset_hash=self.subsets[1])
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


def _settle(cluster: _Cluster) -> None:
    while True:
        rollout, plan = cluster.plan()
        if plan.actions:
            cluster.apply(plan)
        elif cluster.settled():
            return
        else:
            cluster.wait(rollout, plan)


def rollout_timeline(rollout_obj: Mapping[str, Any], *,
                     defaults: RolloutDefaults | None = None) -> Timeline:
    """The whole update of ``rollout_obj`` from a stable previous revision to full promotion.

    Raises ``InvalidSpecError`` for a Rollout the daemon would not act on, and
    ``TimelineError`` when the simulation cannot finish.
    """
    defaults = defaults or RolloutDefaults()
    target = _fresh_rollout(rollout_obj)
    parsed = parse_rollout(target, defaults)
    previous = copy.deepcopy(target)
    previous["spec"]["template"] = _previous_template(parsed.template)
    cluster = _Cluster(rollout=previous, replica_sets={}, services=_synthetic_services(parsed),
                       weight=0, subsets=(None, None), now=PLAN_EPOCH, defaults=defaults)
    _settle(cluster)  # the first revision goes straight to stable

    cluster.replace_template(parsed.template)  # the update: as after a ``set image``
    start = cluster.now
    steps = parsed.canary.steps
    new_hash = pod_template_hash(parsed.template)
    records: list[StepPlan] = []
    promoted_at: datetime | None = None
    while True:
        rollout, plan = cluster.plan()
        if not plan.actions:
            if cluster.settled():
                break
            cluster.wait(rollout, plan)
            continue
        status = cluster.status
        before = int(status.get("currentStepIndex") or 0) \
            if status.get("currentPodHash") == new_hash else 0
        after = int(plan.status.get("currentStepIndex", len(steps)) or 0)
        stable_hash = status.get("stableRS")
        canary_before = cluster.spec_replicas(new_hash)
        stable_before = cluster.spec_replicas(stable_hash)
        weight = cluster.weight
        moved = next((a.canary_weight for a in plan.actions if isinstance(a, SetTraffic)), None)
        for index in range(before, min(after, len(steps))):
            step = steps[index]
            if isinstance(step, SetWeightStep) and moved is not None:
                weight = moved
            records.append(StepPlan(
                index=index,
                step=copy.deepcopy(parsed.canary.raw_steps[index]),
                canary_weight=weight if parsed.canary.traffic_routed
                else weight_at(steps, index),
                canary_replicas=canary_before,
                stable_replicas=stable_before,
                pause_seconds=step.duration_seconds if isinstance(step, PauseStep) else None,
                manual=isinstance(step, PauseStep) and step.duration_seconds is None,
                analysis=analysis_at(parsed, index),
                at_seconds=(cluster.now - start).total_seconds(),
            ))
        cluster.apply(plan)
        if promoted_at is None and cluster.status.get("stableRS") == new_hash:
            promoted_at = cluster.now
    return Timeline(
        steps=tuple(records), replicas=parsed.replicas,
        traffic_routed=parsed.canary.traffic_routed,
        promoted_at_seconds=((promoted_at or cluster.now) - start).total_seconds(),
        settled_at_seconds=(cluster.now - start).total_seconds(),
        reconciles=cluster.reconciles)


# --- the next action from observed state --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NextAction:
    """What one reconcile of the daemon would do now, and why."""

    plan: Plan
    canary_weight: int  # after the actions
    canary_replicas: int
    stable_replicas: int
    reason: str


def _replicas_after(observed: Observed, plan: Plan, pod_hash: str | None) -> int:
    if not pod_hash:
        return 0
    replicas: dict[str, int] = {}
    names: dict[str, str] = {}
    for rs in observed.replica_sets:
        replicas[rs.name] = rs.spec_replicas
        names[rs.name] = rs.pod_hash
    for action in plan.actions:
        if isinstance(action, CreateReplicaSet):
            replicas[action.name] = int(action.body["spec"]["replicas"])
            names[action.name] = action.body["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
        elif isinstance(action, PatchReplicaSet) and "replicas" in (action.patch.get("spec")
                                                                     or {}):
            replicas[action.name] = int(action.patch["spec"]["replicas"])
        elif isinstance(action, DeleteReplicaSet):
            replicas.pop(action.name, None)
    return sum(count for name, count in replicas.items() if names.get(name) == pod_hash)


def _waiting_reason(rollout: Rollout, observed: Observed, plan: Plan, now: datetime) -> str:
    status = plan.status
    steps = rollout.canary.steps
    index = int(status.get("currentStepIndex", len(steps)) or 0)
    if status.get("abort"):
        return "the update was aborted: traffic, Services and scale are back on stable"
    if status.get("currentPodHash") and status.get("currentPodHash") == status.get("stableRS"):
        return "fully promoted: nothing to do"
    if rollout.paused:
        return "spec.paused is true: waiting for `promote`"
    if index < len(steps):
        step = steps[index]
        where = f"step {index}/{len(steps)}"
        if isinstance(step, PauseStep):
            if step.duration_seconds is None:
                return f"paused at {where} (pause without a duration): waiting for `promote`"
            condition = next((c for c in status.get("pauseConditions") or []
                              if c.get("reason") == CANARY_PAUSE_REASON), None)
            started = parse_time(str((condition or {}).get("startTime", ""))) or now
            ends = started + timedelta(seconds=step.duration_seconds)
            left = max(0.0, (ends - now).total_seconds())
            return f"paused at {where} until {format_time(ends)} ({left:g}s left)"
        if isinstance(step, AnalysisStep):
            run = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {})
            return (f"waiting at {where} for AnalysisRun {run.get('name', '?')} to succeed "
                    f"(now {run.get('status', 'Pending')})")
        new = next((rs for rs in observed.replica_sets
                    if rs.pod_hash == status.get("currentPodHash")), None)
        if new is not None and new.available < new.spec_replicas:
            return (f"waiting at {where} for ReplicaSet {new.name}: {new.available} of "
                    f"{new.spec_replicas} pods available")
    if plan.requeue_at is not None:
        return f"waiting until {format_time(plan.requeue_at)}"
    return f"waiting for the cluster to change (phase {plan.phase})"


def next_action(rollout: Rollout, observed: Observed, *, now: datetime,
                resource_version: str | None = None) -> NextAction:
    """One ``plan_rollout`` call, summarised: the writes, where they lead, and why."""
    plan = plan_rollout(rollout, observed, now=now, resource_version=resource_version)
    status = plan.status
    if rollout.canary.traffic_routed:
        moved = next((a.canary_weight for a in plan.actions if isinstance(a, SetTraffic)), None)
        current = observed.traffic.canary_weight if observed.traffic is not None else 0
        weight = moved if moved is not None else current
    else:
        index = int(status.get("currentStepIndex", len(rollout.canary.steps)) or 0)
        weight = 0 if status.get("abort") else weight_at(rollout.canary.steps, index)
    if plan.events:
        reason = "; ".join(event.message for event in plan.events)
    elif plan.actions:
        reason = "bring the status up to date"
    else:
        reason = _waiting_reason(rollout, observed, plan, now)
    stable = status.get("stableRS")
    current_hash = status.get("currentPodHash")
    return NextAction(
        plan=plan, canary_weight=weight,
        canary_replicas=0 if current_hash == stable
        else _replicas_after(observed, plan, current_hash),
        stable_replicas=_replicas_after(observed, plan, stable),
        reason=reason)


def action_json(action: Action, *, rollout: Rollout) -> Obj:
    """An action as the stable ``plan -o json`` contract spells it (docs/plan-json.md)."""
    if isinstance(action, CreateReplicaSet):
        return {"kind": "CreateReplicaSet", "target": f"ReplicaSet/{action.name}",
                "replicas": int(action.body["spec"]["replicas"]), "body": action.body}
    if isinstance(action, PatchReplicaSet):
        result: Obj = {"kind": "PatchReplicaSet", "target": f"ReplicaSet/{action.name}"}
        replicas = (action.patch.get("spec") or {}).get("replicas")
        if replicas is not None:
            result["replicas"] = int(replicas)
        result["patch"] = action.patch
        return result
    if isinstance(action, DeleteReplicaSet):
        return {"kind": "DeleteReplicaSet", "target": f"ReplicaSet/{action.name}"}
    if isinstance(action, PatchService):
        return {"kind": "PatchService", "target": f"Service/{action.name}",
                "patch": action.patch}
    if isinstance(action, SetTraffic):
        istio = rollout.canary.istio
        targets: Sequence[str] = [f"VirtualService/{ref.name}"
                                  for ref in (istio.virtual_services if istio else ())]
        if istio is not None and istio.destination_rule is not None:
            targets = [f"DestinationRule/{istio.destination_rule['name']}", *targets]
        return {"kind": "SetTraffic", "target": ",".join(targets),
                "canaryWeight": action.canary_weight, "stableWeight": action.stable_weight,
                "canaryHash": action.canary_hash, "stableHash": action.stable_hash}
    if isinstance(action, PatchRolloutStatus):
        return {"kind": "PatchRolloutStatus", "target": f"Rollout/{rollout.name}",
                "patch": action.patch}
    if isinstance(action, CreateAnalysisRun):
        return {"kind": "CreateAnalysisRun", "target": f"AnalysisRun/{action.name}",
                "body": action.body}
    if isinstance(action, PatchAnalysisRun):
        return {"kind": "PatchAnalysisRun", "target": f"AnalysisRun/{action.name}",
                "patch": action.patch}
    return {"kind": "DeleteAnalysisRun", "target": f"AnalysisRun/{action.name}"}
