"""The canary strategy: from a Rollout, what was observed and ``now``, the writes to make next.

One pass, each part in its own module:

1. ``revisions``: find the new (current template) and stable ReplicaSets; ``restart``: when
   ``restartAt`` asks for it and pods may go, evict them and do nothing else this pass;
2. ``steps``: record the revision (resetting the steps when the template or the steps
   changed), then walk the step machine as far as the observed state allows (``setWeight``
   completes once the canary has its pods available and the weight is routed; ``pause``
   records a pause condition and waits for its duration or a promotion; analysis steps follow
   their runs), or roll back on abort; ``drift``: weights someone changed by hand between
   steps are routed back;
3. ``finish``: promote fully after the last step (an abort under ``dynamicStableScale`` keeps
   the traffic the stable cannot take back yet);
4. the writes: each role's pod metadata (``metadata``), ReplicaSets (``scaling``: scale up
   before traffic moves), then Services
   and traffic (``routing``: a weight is only raised onto pods that are available; the
   ``managed`` routes of setHeaderRoute / setMirrorRoute steps go with it), then
   scale-downs (delayed by ``scaleDownDelaySeconds`` so in-flight requests finish), then
   AnalysisRuns, the Deployment a ``workloadRef`` names (``workload``: scaled down as its
   ``scaleDown`` says) and the status (``finish``, with the progress deadline of ``progress``).

Everything a restart needs is in the Rollout's status and the ReplicaSets' annotations, so a
daemon killed between two writes replans the same remaining writes when it comes back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from shiftd.decide.rollout.actions import Action, EvictPods, PatchRolloutStatus, Plan
from shiftd.decide.rollout.analysis import housekeeping
from shiftd.decide.rollout.decision import Decision, Draft, copy_json
from shiftd.decide.rollout.drift import restore_drift
from shiftd.decide.rollout.finish import finish_status, plan_invalid_spec, promote_when_done
from shiftd.decide.rollout.hashing import rollout_steps_hash
from shiftd.decide.rollout.metadata import sync_metadata
from shiftd.decide.rollout.observed import Observed, parse_time
from shiftd.decide.rollout.replicas import abort_traffic_weight, resolve_fenceposts
from shiftd.decide.rollout.restart import needs_restart, plan_restart
from shiftd.decide.rollout.revisions import Revisions, find_revisions
from shiftd.decide.rollout.routing import route, serving_labels
from shiftd.decide.rollout.scaling import history_deletions, scale_down_older, scale_new_and_stable
from shiftd.decide.rollout.status import format_time, merge_patch_diff
from shiftd.decide.rollout.steps import enter_steps, run_steps
from shiftd.decide.rollout.targets import canary_replicas_or_weight
from shiftd.decide.rollout.workload import record_workload, scale_workload
from shiftd.model.argo.rollout import MANAGED_BY_ANNOTATION, Rollout

RESTART_CHECK = timedelta(seconds=30)  # Argo's restartPodCheckTime
TRAFFIC_ROUTING = "spec.strategy.canary.trafficRouting"


def plan_canary(rollout: Rollout, observed: Observed, *, now: datetime,
                resource_version: str | None = None) -> Plan:
    """Decide the next writes for one valid canary Rollout. Pure: no I/O, no clock."""
    error = _reference_error(rollout, observed)
    if error is not None:
        raw = {"metadata": {"generation": rollout.generation, "resourceVersion": resource_version},
               "status": rollout.status}
        return plan_invalid_spec(raw, error, now=now)
    draft = Draft(rollout=rollout, observed=observed, now=now, status=copy_json(rollout.status))
    revisions = find_revisions(rollout, observed.replica_sets,
                               recorded_stable=draft.status.get("stableRS") or None)
    evictions = restart_pods(draft, revisions)
    if evictions is not None:
        # as Argo: availability is stale once pods were restarted, so nothing else this pass
        return Plan(actions=(evictions,), events=tuple(draft.events),
                    requeue_at=draft.requeue_at, status=draft.status)
    decision = restore_drift(draft, run_steps(draft, enter_steps(draft, revisions)))
    decision = promote_when_done(draft, decision)
    decision = _dynamic_abort_weight(draft, decision)
    if decision.leaving_canary:
        draft.current_runs.clear()  # no analysis outlives a promotion or an abort
    draft.analysis_actions.extend(housekeeping(observed.analysis_runs,
                                               current=draft.current_runs))
    actions = [*_writes(draft, decision), *draft.analysis_actions]
    finish_status(draft, decision)
    annotate = record_workload(draft)
    patch = merge_patch_diff(rollout.status, draft.status)
    if patch:
        actions.append(PatchRolloutStatus(patch=patch, resource_version=resource_version))
    # after the status (which is guarded by the resourceVersion they change): the
    # workload-generation annotation, and the Deployment retiring once the Rollout is Healthy
    actions.extend(annotate)
    actions.extend(scale_workload(draft, decision.revisions))
    return Plan(actions=tuple(actions), events=tuple(draft.events),
                requeue_at=draft.requeue_at, status=draft.status,
                again=draft.again and bool(actions))


def restart_pods(draft: Draft, revisions: Revisions) -> EvictPods | None:
    """``spec.restartAt``: the pods to evict now (None: none); records ``status.restartedAt``
    once none is left to restart. Needs the pods (``Observed.pods``)."""
    rollout, pods = draft.rollout, draft.observed.pods
    restarted_at = parse_time(str(draft.status.get("restartedAt", "")))
    if rollout.restart_at is None or not needs_restart(
            restart_at=rollout.restart_at, restarted_at=restarted_at, now=draft.now):
        if rollout.restart_at is not None and rollout.restart_at >= draft.now:
            draft.wake_at(rollout.restart_at + timedelta(seconds=1))
        return None
    if _template_or_steps_changed(draft, revisions):
        # as Argo: a new revision (or new steps) ends the restart under way; the update
        # replaces the pods anyway, and the restart is recorded as done
        draft.status["restartedAt"] = format_time(rollout.restart_at)
        return None
    if pods is None:
        return None
    _, unavailable = resolve_fenceposts(max_surge=rollout.canary.max_surge,
                                        max_unavailable=rollout.canary.max_unavailable,
                                        replicas=rollout.replicas)
    priority = tuple(rs.name for rs in (revisions.stable_rs, revisions.new_rs) if rs is not None)
    decision = plan_restart(restart_at=rollout.restart_at, pods=pods,
                            replica_sets=draft.observed.replica_sets, priority=priority,
                            replicas=rollout.replicas, max_unavailable=unavailable)
    if not decision.evict:
        if decision.waiting:
            draft.wake_at(draft.now + RESTART_CHECK)  # until availability allows more
        else:  # recorded once no old pod is seen any more (an eviction may be refused)
            draft.status["restartedAt"] = format_time(rollout.restart_at)
        return None
    draft.event("RestartingPods", f"Restarting {len(decision.evict)} pod(s) older than "
                f"restartAt: {', '.join(decision.evict)}")
    draft.wake_at(draft.now + RESTART_CHECK)
    return EvictPods(names=decision.evict)


def _template_or_steps_changed(draft: Draft, revisions: Revisions) -> bool:
    """Argo's ``PodTemplateOrStepsChanged``, against what the status last recorded."""
    status = draft.status
    return bool(status.get("currentPodHash")) and (
        status.get("currentPodHash") != revisions.pod_hash
        or status.get("currentStepHash") != rollout_steps_hash(draft.rollout))


def _dynamic_abort_weight(draft: Draft, decision: Decision) -> Decision:
    """Aborting under ``dynamicStableScale``: the canary keeps the traffic the stable cannot
    take yet, stepping down through the setWeight steps as the stable regains its pods."""
    rollout, revisions = draft.rollout, decision.revisions
    if (not decision.aborted or not rollout.canary.dynamic_stable_scale
            or revisions.new_rs is None or revisions.stable_rs is None):
        return decision
    if rollout.replicas == 0:  # no pod to keep traffic on: all of it back at once (as Argo)
        return replace(decision, planned_weight=0)
    _, desired = canary_replicas_or_weight(rollout, revisions, index=decision.index, aborted=True)
    weight = abort_traffic_weight(replicas=rollout.replicas, desired_weight=desired,
                                  stable_available=revisions.stable_rs.available,
                                  current_weight=decision.current_weight)
    return replace(decision, planned_weight=weight)


def _reference_error(rollout: Rollout, observed: Observed) -> str | None:
    """A Service the Rollout names is missing or managed by another Rollout, or the router
    cannot read its objects."""
    canary = rollout.canary
    for role, name in (("canaryService", canary.canary_service),
                       ("stableService", canary.stable_service)):
        service = observed.services.get(name) if name else None
        if name and service is None:
            return f"spec.strategy.canary.{role}: Service {name!r} not found"
        owner = service.annotations.get(MANAGED_BY_ANNOTATION) if service else None
        if owner and owner != rollout.name:  # as Argo's ValidateService
            return (f"spec.strategy.canary.{role}: Service {name!r} is managed by another "
                    f"Rollout ({owner!r})")
    if observed.traffic is not None and observed.traffic.error:
        error = observed.traffic.error
        # the router's objects do not fit what the Rollout names: say which field names them
        return error if error.startswith("spec.") else f"{TRAFFIC_ROUTING}: {error}"
    return None


def _writes(draft: Draft, decision: Decision) -> list[Action]:
    """The workload and traffic writes, in the order that keeps traffic on ready pods."""
    scaled = scale_new_and_stable(draft, decision)
    routed = route(draft, decision)
    # before pods are added; never taking pods out of a subset that routes to them
    metadata = sync_metadata(draft.rollout, decision.revisions,
                             serving=serving_labels(draft, routed))
    if (routed.traffic or metadata) and decision.leaving_canary \
            and draft.observed.traffic is not None and draft.observed.traffic.routes_by_subset:
        # a role switch (promotion, abort) over subsets goes step by step: traffic leaves a
        # subset, then its pods' metadata switches, then a subset moves onto them
        draft.again = True
    scale_downs = [*scaled.downs,
                   *scale_down_older(draft, decision, selected=set(routed.selected))]
    deletions = history_deletions(draft.rollout, decision.revisions)
    if routed.lowering and not decision.fully_promoted:
        # moving traffic off a canary (abort, new revision) before its Service moves; at
        # promotion the stable Service moves first, so traffic never returns to the old pods
        return [*metadata, *scaled.ups, *routed.traffic, *routed.services, *scale_downs,
                *deletions]
    return [*metadata, *scaled.ups, *routed.services, *routed.traffic, *scale_downs, *deletions]
