"""Plans you can read before anything moves: the daemon's own planner, run in memory.

``rollout_timeline`` answers "what will this Rollout do?" by driving ``plan_rollout`` — the
very function the daemon calls — through a whole update in a pure, in-memory stand-in for the
cluster (``sandbox``): every write a plan asks for is applied to plain values, pods become
available at once, time jumps to the end of each timed pause, and a pause without a duration
is promoted the way ``kubectl argo rollouts promote`` promotes it (``operator.promote_patch``).
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shiftd.decide.rollout.actions import (
    Action,
    AnnotateRollout,
    CreateAnalysisRun,
    CreateReplicaSet,
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
from shiftd.decide.rollout.hashing import pod_template_hash
from shiftd.decide.rollout.observed import Observed, parse_time
from shiftd.decide.rollout.plan import plan_rollout
from shiftd.decide.rollout.sandbox import Sandbox, TimelineError, updated_sandbox
from shiftd.decide.rollout.status import CANARY_PAUSE_REASON, format_time
from shiftd.decide.rollout.targets import weight_at
from shiftd.model.argo.rollout import (
    POD_TEMPLATE_HASH_LABEL,
    AnalysisStep,
    PauseStep,
    Rollout,
    RolloutDefaults,
    SetWeightStep,
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


def rollout_timeline(rollout_obj: Mapping[str, Any], *,
                     defaults: RolloutDefaults | None = None) -> Timeline:
    """The whole update of ``rollout_obj`` from a stable previous revision to full promotion.

    Raises ``InvalidSpecError`` for a Rollout the daemon would not act on, and
    ``TimelineError`` when the simulation cannot finish.
    """
    sandbox, parsed = updated_sandbox(rollout_obj, defaults or RolloutDefaults())
    start = sandbox.now
    new_hash = pod_template_hash(parsed.template)
    records: list[StepPlan] = []
    promoted_at: datetime | None = None
    while True:
        rollout, plan = sandbox.plan()
        if not plan.actions:
            if sandbox.settled():
                break
            sandbox.wait(rollout, plan)
            continue
        records.extend(_steps_completed(sandbox, plan, parsed=parsed, new_hash=new_hash,
                                        elapsed=(sandbox.now - start).total_seconds()))
        sandbox.apply(plan)
        if promoted_at is None and sandbox.status.get("stableRS") == new_hash:
            promoted_at = sandbox.now
    return Timeline(
        steps=tuple(records), replicas=parsed.replicas,
        traffic_routed=parsed.canary.traffic_routed,
        promoted_at_seconds=((promoted_at or sandbox.now) - start).total_seconds(),
        settled_at_seconds=(sandbox.now - start).total_seconds(),
        reconciles=sandbox.reconciles)


def _steps_completed(
    sandbox: Sandbox, plan: Plan, *, parsed: Rollout, new_hash: str, elapsed: float
) -> list[StepPlan]:
    """The steps ``plan`` completes, with the weight and counts as they stand when it does."""
    steps = parsed.canary.steps
    status = sandbox.status
    before = int(status.get("currentStepIndex") or 0) \
        if status.get("currentPodHash") == new_hash else 0
    after = int(plan.status.get("currentStepIndex", len(steps)) or 0)
    canary_before = sandbox.spec_replicas(new_hash)
    stable_before = sandbox.spec_replicas(status.get("stableRS"))
    weight = sandbox.weight
    moved = next((a.canary_weight for a in plan.actions if isinstance(a, SetTraffic)), None)
    records: list[StepPlan] = []
    for index in range(before, min(after, len(steps))):
        step = steps[index]
        if isinstance(step, SetWeightStep) and moved is not None:
            weight = moved
        records.append(StepPlan(
            index=index,
            step=copy.deepcopy(parsed.canary.raw_steps[index]),
            canary_weight=weight if parsed.canary.traffic_routed else weight_at(steps, index),
            canary_replicas=canary_before,
            stable_replicas=stable_before,
            pause_seconds=step.duration_seconds if isinstance(step, PauseStep) else None,
            manual=isinstance(step, PauseStep) and step.duration_seconds is None,
            analysis=analysis_at(parsed, index),
            at_seconds=elapsed,
        ))
    return records


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
        if action.pod_metadata:
            result["podMetadata"] = action.pod_metadata
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
        result = {"kind": "SetTraffic", "target": ",".join(targets),
                  "canaryWeight": action.canary_weight, "stableWeight": action.stable_weight,
                  "canaryHash": action.canary_hash, "stableHash": action.stable_hash}
        if rollout.canary.managed_routes:
            result["managedRoutes"] = [
                {"name": r.name, "kind": r.kind}
                | ({"percentage": r.percentage} if r.kind == "mirror" else {})
                for r in action.managed_routes]
        return result
    if isinstance(action, PatchRolloutStatus):
        return {"kind": "PatchRolloutStatus", "target": f"Rollout/{rollout.name}",
                "patch": action.patch}
    if isinstance(action, CreateAnalysisRun):
        return {"kind": "CreateAnalysisRun", "target": f"AnalysisRun/{action.name}",
                "body": action.body}
    if isinstance(action, PatchAnalysisRun):
        return {"kind": "PatchAnalysisRun", "target": f"AnalysisRun/{action.name}",
                "patch": action.patch}
    if isinstance(action, EvictPods):
        return {"kind": "EvictPods", "target": ",".join(f"Pod/{n}" for n in action.names)}
    if isinstance(action, AnnotateRollout):
        return {"kind": "AnnotateRollout", "target": f"Rollout/{rollout.name}",
                "patch": {"metadata": {"annotations": action.annotations}}}
    if isinstance(action, ScaleDeployment):
        return {"kind": "ScaleDeployment", "target": f"Deployment/{action.name}",
                "replicas": action.replicas}
    return {"kind": "DeleteAnalysisRun", "target": f"AnalysisRun/{action.name}"}
