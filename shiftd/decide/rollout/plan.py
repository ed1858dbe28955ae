"""The canary planner: from a Rollout, what was observed and ``now``, the writes to make next.

``plan_rollout`` is the heart of shiftd and is pure. One call:

1. finds the new (current template) and stable ReplicaSets, resetting the steps when the
   template or the steps changed;
2. walks the step machine as far as the observed state allows (``setWeight`` completes once the
   canary has its pods available and the weight is routed; ``pause`` records a pause condition
   and waits for its duration or a promotion);
3. promotes fully after the last step, or rolls back on abort;
4. derives the writes: ReplicaSets first (scale up before traffic moves), then traffic and
   Services (a weight is only raised onto pods that are available), then scale-downs
   (delayed by ``scaleDownDelaySeconds`` so in-flight requests finish), then status.

Everything a restart needs is in the Rollout's status and the ReplicaSets' annotations, so a
daemon killed between two writes replans the same remaining writes when it comes back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from shiftd.decide.rollout.actions import (
    Action,
    CreateReplicaSet,
    DeleteReplicaSet,
    EventSpec,
    PatchReplicaSet,
    PatchRolloutStatus,
    PatchService,
    Plan,
    SetTraffic,
)
from shiftd.decide.rollout.analysis import (
    BACKGROUND_STATUS,
    INCONCLUSIVE_PAUSE_REASON,
    STEP_STATUS,
    Verdict,
    background_key,
    follow_run,
    housekeeping,
    step_key,
)
from shiftd.decide.rollout.hashing import pod_template_hash, steps_hash, templates_equal
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, parse_time
from shiftd.decide.rollout.replicas import (
    RSCounts,
    basic_canary_counts,
    resolve_fenceposts,
    traffic_routed_counts,
    traffic_weight_to_replicas,
)
from shiftd.decide.rollout.status import (
    AVAILABLE,
    CANARY_PAUSE_REASON,
    COMPLETED,
    HEALTHY,
    INVALID_SPEC,
    PAUSED,
    PROGRESSING,
    ROLLOUT_ABORTED_REASON,
    calculate_phase,
    format_time,
    merge_patch_diff,
    remove_condition,
    selector_string,
    set_condition,
)
from shiftd.model.argo.rollout import (
    MANAGED_BY_ANNOTATION,
    MAX_WEIGHT,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    SCALE_DOWN_DEADLINE_ANNOTATION,
    AnalysisStep,
    PauseStep,
    Rollout,
    SetCanaryScaleStep,
    SetWeightStep,
    Step,
)


def _copy_json(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data; an orjson round trip is many times faster than deepcopy."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return copied


def describe_step(step: Step) -> str:
    if isinstance(step, SetWeightStep):
        return f"setWeight: {step.weight}"
    if isinstance(step, PauseStep):
        if step.duration_seconds is None:
            return "pause: {}"
        return f"pause: {{duration: {step.duration_seconds:g}s}}"
    if isinstance(step, SetCanaryScaleStep):
        return "setCanaryScale"
    return "analysis"


def weight_at(steps: tuple[Step, ...], index: int) -> int:
    """Argo's GetCurrentSetWeight: the last setWeight at or before ``index``; 100 past the end."""
    if index >= len(steps):
        return MAX_WEIGHT
    for step in reversed(steps[: index + 1]):
        if isinstance(step, SetWeightStep):
            return step.weight
    return 0


def canary_scale_at(steps: tuple[Step, ...], index: int, replicas: int) -> int | None:
    """An explicit canary size from the last setCanaryScale at or before ``index``, if any."""
    if index >= len(steps):
        return None
    for step in reversed(steps[: index + 1]):
        if isinstance(step, SetCanaryScaleStep):
            if step.match_traffic_weight:
                return None
            if step.replicas is not None:
                return step.replicas
            if step.weight is not None:
                return traffic_weight_to_replicas(replicas, step.weight)
    return None


@dataclass
class _Draft:
    """The mutable scratchpad of one planning pass; never escapes ``plan_rollout``."""

    rollout: Rollout
    observed: Observed
    now: datetime
    status: dict[str, Any]
    events: list[EventSpec] = field(default_factory=list)
    requeue_at: datetime | None = None
    again: bool = False  # stopped early on purpose: plan again once these writes are done

    @property
    def now_text(self) -> str:
        return format_time(self.now)

    def wake_at(self, when: datetime) -> None:
        if self.requeue_at is None or when < self.requeue_at:
            self.requeue_at = when

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(EventSpec(reason, message, "Warning" if warning else "Normal"))


def _reference_error(rollout: Rollout, observed: Observed) -> str | None:
    canary = rollout.canary
    for role, name in (("canaryService", canary.canary_service),
                       ("stableService", canary.stable_service)):
        if name and observed.services.get(name) is None:
            return f"spec.strategy.canary.{role}: Service {name!r} not found"
    if observed.traffic is not None and observed.traffic.error:
        return observed.traffic.error
    return None


def plan_invalid_spec(rollout_obj: dict[str, Any], message: str, *, now: datetime) -> Plan:
    """InvalidSpec condition and phase Degraded; nothing else is touched."""
    old = rollout_obj.get("status") or {}
    status = _copy_json(old)
    now_text = format_time(now)
    status["conditions"] = set_condition(
        list(status.get("conditions") or []), type_=INVALID_SPEC, status=True,
        reason=INVALID_SPEC, message=message, now=now_text,
    )
    status["phase"] = "Degraded"
    status["message"] = f"{INVALID_SPEC}: {message}"
    generation = (rollout_obj.get("metadata") or {}).get("generation")
    if generation is not None:
        status["observedGeneration"] = str(generation)
    patch = merge_patch_diff(old, status)
    actions: tuple[Action, ...] = ()
    events: tuple[EventSpec, ...] = ()
    if patch:
        version = (rollout_obj.get("metadata") or {}).get("resourceVersion")
        actions = (PatchRolloutStatus(patch=patch, resource_version=version),)
        was_invalid = any(c.get("type") == INVALID_SPEC and c.get("message") == message
                          for c in old.get("conditions") or [])
        if not was_invalid:
            events = (EventSpec(INVALID_SPEC, message, "Warning"),)
    return Plan(actions=actions, events=events, requeue_at=None, status=status)


def _find_new_replica_set(
    rollout: Rollout, replica_sets: tuple[ReplicaSetView, ...], pod_hash: str
) -> ReplicaSetView | None:
    owned = [rs for rs in replica_sets if rs.owned]
    for rs in owned:
        if rs.pod_hash == pod_hash:
            return rs
    for rs in replica_sets:  # Argo falls back to comparing templates; orphans get adopted
        if templates_equal(rs.template, rollout.template):
            return rs
    return None


def _new_replica_set_body(
    rollout: Rollout, *, pod_hash: str, revision: int, replicas: int
) -> dict[str, Any]:
    template = copy.deepcopy(rollout.template)
    template_metadata = template.setdefault("metadata", {})
    labels = dict(template_metadata.get("labels") or {})
    labels[POD_TEMPLATE_HASH_LABEL] = pod_hash
    template_metadata["labels"] = labels
    selector = copy.deepcopy(rollout.selector)
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                               POD_TEMPLATE_HASH_LABEL: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{rollout.name}-{pod_hash}",
            "namespace": rollout.namespace,
            "labels": labels,
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [_owner_reference(rollout)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": rollout.min_ready_seconds,
            "selector": selector,
            "template": template,
        },
    }


def _owner_reference(rollout: Rollout) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": rollout.name,
            "uid": rollout.uid, "controller": True, "blockOwnerDeletion": True}


def _counts(rs: ReplicaSetView | None) -> RSCounts | None:
    return None if rs is None else RSCounts(rs.name, rs.spec_replicas, rs.available)


@dataclass(frozen=True, slots=True)
class _Targets:
    canary_replicas: int
    stable_replicas: int
    weight: int  # the canary weight the current step asks for


def _targets(
    draft: _Draft,
    *,
    index: int,
    new_rs: ReplicaSetView | None,
    stable_rs: ReplicaSetView | None,
    older: tuple[ReplicaSetView, ...],
    aborted: bool,
) -> _Targets:
    rollout = draft.rollout
    canary = rollout.canary
    replicas = rollout.replicas
    weight = 0 if aborted else weight_at(canary.steps, index)
    if canary.traffic_routed:
        scale = None if aborted else canary_scale_at(canary.steps, index, replicas)
        canary_count, stable_count = traffic_routed_counts(
            replicas=replicas, weight=weight, canary_scale_replicas=scale
        )
        if aborted and new_rs is not None:
            canary_count = new_rs.spec_replicas  # kept until the abort scale-down deadline
        return _Targets(canary_count, stable_count, weight)
    canary_count, stable_count = basic_canary_counts(
        replicas=replicas, weight=weight, max_surge=canary.max_surge,
        max_unavailable=canary.max_unavailable, new_rs=_counts(new_rs),
        stable_rs=_counts(stable_rs), older=tuple(c for rs in older if (c := _counts(rs))),
    )
    return _Targets(canary_count, stable_count, weight)


def _at_desired_counts(
    draft: _Draft,
    targets: _Targets,
    *,
    new_rs: ReplicaSetView | None,
    stable_rs: ReplicaSetView | None,
    older: tuple[ReplicaSetView, ...],
) -> bool:
    """Argo's AtDesiredReplicaCountsForCanary, judged against what the cluster reports: the
    canary has exactly its pods available, the stable has its pods created and, without a
    traffic router, no older revision still serves."""
    # As Argo: a step never completes before the new ReplicaSet exists, even at 0 replicas.
    canary_ok = (
        new_rs is not None and new_rs.spec_replicas == targets.canary_replicas
        and new_rs.available >= targets.canary_replicas
    )
    stable_ok = stable_rs is None or (stable_rs.spec_replicas == targets.stable_replicas
                                      and stable_rs.replicas >= targets.stable_replicas)
    older_ok = draft.rollout.canary.traffic_routed or sum(rs.available for rs in older) == 0
    return canary_ok and stable_ok and older_ok


def _pause_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    for condition in status.get("pauseConditions") or []:
        if condition.get("reason") == CANARY_PAUSE_REASON:
            return dict(condition)
    return None


def _reset_for_new_revision(status: dict[str, Any]) -> None:
    for key in ("pauseConditions", "abortedAt"):
        status.pop(key, None)
    status["controllerPause"] = False
    status["abort"] = False
    status["promoteFull"] = False
    canary_status = status.get("canary") or {}
    canary_status.pop("currentStepAnalysisRunStatus", None)
    canary_status.pop("currentBackgroundAnalysisRunStatus", None)
    status["canary"] = canary_status


def plan_rollout(rollout: Rollout, observed: Observed, *, now: datetime,
                 resource_version: str | None = None) -> Plan:
    """Decide the next writes for one valid Rollout. Pure: no I/O, no clock."""
    error = _reference_error(rollout, observed)
    if error is not None:
        raw = {"metadata": {"generation": rollout.generation, "resourceVersion": resource_version},
               "status": rollout.status}
        return plan_invalid_spec(raw, error, now=now)

    draft = _Draft(rollout=rollout, observed=observed, now=now,
                   status=_copy_json(rollout.status))
    status = draft.status
    canary = rollout.canary
    steps = canary.steps
    step_count = len(steps)
    pod_hash = pod_template_hash(rollout.template)
    replica_sets = observed.replica_sets
    new_rs = _find_new_replica_set(rollout, replica_sets, pod_hash)
    if new_rs is not None:
        pod_hash = new_rs.pod_hash or pod_hash
    stable_hash: str | None = status.get("stableRS") or None
    stable_rs = next((rs for rs in replica_sets if stable_hash and rs.pod_hash == stable_hash
                      and rs is not new_rs and rs.owned), None)
    if stable_hash and stable_hash != pod_hash and stable_rs is None:
        stable_hash = None  # the stable ReplicaSet is gone: nothing to keep traffic on

    max_revision = max((rs.revision for rs in replica_sets), default=0)
    revision = new_rs.revision if new_rs is not None else max_revision + 1
    if new_rs is not None and new_rs.revision < max_revision and stable_hash != pod_hash:
        revision = max_revision + 1  # a rollback becomes the newest revision, as in Argo

    step_hash = steps_hash(canary.raw_steps)
    if status.get("currentPodHash") != pod_hash or status.get("currentStepHash") != step_hash:
        if status.get("currentPodHash") not in (None, pod_hash) and stable_hash:
            draft.event("RolloutUpdated", f"Rollout updated to revision {revision}")
        _reset_for_new_revision(status)
        status["currentStepIndex"] = step_count if pod_hash == stable_hash else 0
    status["currentPodHash"] = pod_hash
    status["currentStepHash"] = step_hash
    if stable_hash is None:
        stable_hash = pod_hash  # the first rollout goes straight to stable
        status["stableRS"] = pod_hash
        status["currentStepIndex"] = step_count
    index = min(max(int(status.get("currentStepIndex", 0) or 0), 0), step_count)
    if status.get("promoteFull"):
        index = step_count
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        status["abort"] = False
    fully_promoted = stable_hash == pod_hash
    analysis_actions: list[Action] = []
    current_runs: set[str] = set()
    aborted = bool(status.get("abort")) and not fully_promoted
    if not status.get("abort"):
        status.pop("abortedAt", None)
    if aborted:
        index = _begin_abort(draft, revision)
    if fully_promoted:
        stable_rs = new_rs
    older = tuple(rs for rs in replica_sets if rs is not new_rs and rs is not stable_rs)

    current_weight = observed.traffic.canary_weight if observed.traffic is not None else 0
    planned_weight = current_weight

    # -- the step machine -----------------------------------------------------------------
    weight_moves = 0
    status["currentStepIndex"] = index
    held = any(c.get("reason") == INCONCLUSIVE_PAUSE_REASON
               for c in status.get("pauseConditions") or [])  # waiting for a human
    while (not fully_promoted and not aborted and not rollout.paused and not held
           and index < step_count):
        step = steps[index]
        if isinstance(step, SetWeightStep | SetCanaryScaleStep):
            targets = _targets(draft, index=index, new_rs=new_rs, stable_rs=stable_rs,
                               older=older, aborted=False)
            if not _at_desired_counts(draft, targets, new_rs=new_rs, stable_rs=stable_rs,
                                      older=older):
                break
            if canary.traffic_routed and isinstance(step, SetWeightStep) \
                    and planned_weight != step.weight:
                if weight_moves:
                    draft.again = True  # one weight move per reconcile: the next one goes on
                    break
                planned_weight = step.weight
                weight_moves += 1
        elif isinstance(step, PauseStep):
            condition = _pause_condition(status)
            if condition is None:
                if not status.get("controllerPause"):
                    status["pauseConditions"] = [
                        *(status.get("pauseConditions") or []),
                        {"reason": CANARY_PAUSE_REASON, "startTime": draft.now_text},
                    ]
                    status["controllerPause"] = True
                    draft.event("RolloutPaused", f"Paused at step {index}")
                    if step.duration_seconds is not None:
                        draft.wake_at(now + timedelta(seconds=step.duration_seconds))
                    break
                status["controllerPause"] = False  # promoted: the pause condition was cleared
            else:
                if step.duration_seconds is None:
                    break
                started = parse_time(str(condition.get("startTime", ""))) or now
                ends = started + timedelta(seconds=step.duration_seconds)
                if now < ends:
                    draft.wake_at(ends)
                    break
                remaining = [c for c in status.get("pauseConditions") or []
                             if c.get("reason") != CANARY_PAUSE_REASON]
                status["pauseConditions"] = remaining
                status["controllerPause"] = bool(remaining)
        elif isinstance(step, AnalysisStep):
            verdict = follow_run(rollout, status=status, runs=observed.analysis_runs,
                                 spec=observed.analysis_specs.get(step_key(index), {}),
                                 pod_hash=pod_hash, revision=revision, step_index=index)
            analysis_actions.extend(verdict.actions)
            current_runs.add(status["canary"][STEP_STATUS]["name"])
            if verdict.outcome != "done":
                _act_on_verdict(draft, verdict)
                if verdict.outcome == "abort":
                    aborted = True
                    index = _begin_abort(draft, revision)
                break
            status["canary"].pop(STEP_STATUS, None)
        index += 1
        status["currentStepIndex"] = index
        draft.event("RolloutStepCompleted",
                    f"Rollout step {index}/{step_count} completed ({describe_step(step)})")
    # -- background analysis, from its starting step (as reached after the steps above) ----
    background = canary.background_analysis
    if (background and not fully_promoted and not aborted
            and index >= int(background.get("startingStep") or 0)):
        verdict = follow_run(rollout, status=status, runs=observed.analysis_runs,
                             spec=observed.analysis_specs.get(background_key(), {}),
                             pod_hash=pod_hash, revision=revision, step_index=None)
        analysis_actions.extend(verdict.actions)
        current_runs.add(status["canary"][BACKGROUND_STATUS]["name"])
        _act_on_verdict(draft, verdict)
        if verdict.outcome == "abort":
            aborted = True
            index = _begin_abort(draft, revision)
    if not status.get("pauseConditions"):
        status.pop("pauseConditions", None)

    # -- full promotion -------------------------------------------------------------------
    if (not fully_promoted and not aborted and index >= step_count and new_rs is not None
            and new_rs.spec_replicas == rollout.replicas and new_rs.available >= rollout.replicas
            and (not rollout.paused or status.get("promoteFull"))):
        stable_hash = pod_hash
        status["stableRS"] = pod_hash
        status["promoteFull"] = False
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        fully_promoted = True
        stable_rs = new_rs
        older = tuple(rs for rs in replica_sets if rs is not new_rs)
        draft.event("RolloutCompleted",
                    f"Promoted: revision {revision} ({pod_hash}) is now stable")

    if fully_promoted or aborted:
        current_runs = set()
    analysis_actions.extend(housekeeping(observed.analysis_runs, current=current_runs))
    actions = _derive_actions(
        draft, pod_hash=pod_hash, stable_hash=stable_hash, revision=revision, new_rs=new_rs,
        stable_rs=stable_rs, older=older, index=index, aborted=aborted,
        fully_promoted=fully_promoted, current_weight=current_weight,
        planned_weight=planned_weight,
    )
    actions.extend(analysis_actions)
    _finish_status(draft, new_rs=new_rs, revision=revision, aborted=aborted,
                   fully_promoted=fully_promoted)
    patch = merge_patch_diff(rollout.status, status)
    if patch:
        actions.append(PatchRolloutStatus(patch=patch, resource_version=resource_version))
    return Plan(actions=tuple(actions), events=tuple(draft.events),
                requeue_at=draft.requeue_at, status=status, again=draft.again and bool(actions))


def _abort_detail(status: dict[str, Any]) -> str:
    """The failed analysis behind an abort, if that is what caused it."""
    canary_status = status.get("canary") or {}
    for key in (STEP_STATUS, BACKGROUND_STATUS):
        entry = canary_status.get(key) or {}
        if entry.get("status") in ("Failed", "Error"):
            return str(entry.get("message") or f"AnalysisRun {entry.get('name')} "
                       f"{entry.get('status')}")
    return ""


def _begin_abort(draft: _Draft, revision: int) -> int:
    """Aborted: weight to 0 (done by the caller), pauses cleared; returns the step index."""
    status = draft.status
    if "abortedAt" not in status:
        status["abortedAt"] = draft.now_text
        detail = _abort_detail(status)
        draft.event(ROLLOUT_ABORTED_REASON,
                    f"Aborted: Rollout aborted update to revision {revision}"
                    + (f": {detail}" if detail else ""), warning=True)
    status.pop("pauseConditions", None)
    status["controllerPause"] = False
    status["currentStepIndex"] = 0
    return 0


def _act_on_verdict(draft: _Draft, verdict: Verdict) -> None:
    """Abort on a failed run, pause on an inconclusive one (each once)."""
    status = draft.status
    if verdict.outcome == "abort" and not status.get("abort"):
        status["abort"] = True
    elif verdict.outcome == "pause" and not any(
            c.get("reason") == INCONCLUSIVE_PAUSE_REASON
            for c in status.get("pauseConditions") or []):
        status["pauseConditions"] = [*(status.get("pauseConditions") or []),
                                     {"reason": INCONCLUSIVE_PAUSE_REASON,
                                      "startTime": draft.now_text}]
        status["controllerPause"] = True
        draft.event("RolloutPaused", f"Paused: analysis inconclusive: {verdict.message}")


def _derive_actions(
    draft: _Draft,
    *,
    pod_hash: str,
    stable_hash: str,
    revision: int,
    new_rs: ReplicaSetView | None,
    stable_rs: ReplicaSetView | None,
    older: tuple[ReplicaSetView, ...],
    index: int,
    aborted: bool,
    fully_promoted: bool,
    current_weight: int,
    planned_weight: int,
) -> list[Action]:
    rollout = draft.rollout
    canary = rollout.canary
    scale_ups: list[Action] = []
    scale_downs: list[Action] = []

    # -- replica counts -------------------------------------------------------------------
    if fully_promoted:
        canary_count, stable_count = rollout.replicas, rollout.replicas
    else:
        targets = _targets(draft, index=index, new_rs=new_rs, stable_rs=stable_rs, older=older,
                           aborted=aborted)
        canary_count, stable_count = targets.canary_replicas, targets.stable_replicas
        if canary.traffic_routed and index >= len(canary.steps) and not aborted:
            canary_count = rollout.replicas
    if new_rs is None:
        body = _new_replica_set_body(rollout, pod_hash=pod_hash, revision=revision,
                                     replicas=canary_count)
        scale_ups.append(CreateReplicaSet(body=body))
        draft.event("ScalingReplicaSet",
                    f"Created ReplicaSet {body['metadata']['name']} (revision {revision}) "
                    f"with {canary_count} replicas")
    else:
        patch: dict[str, Any] = {}
        annotations: dict[str, Any] = {}
        if not new_rs.owned:
            patch["ownerReferences"] = [*new_rs.owner_references, _owner_reference(rollout)]
        if new_rs.revision != revision:
            annotations[REVISION_ANNOTATION] = str(revision)
        target = canary_count
        if aborted and canary.traffic_routed:
            target = _delayed_scale_down(draft, new_rs, canary.abort_scale_down_delay_seconds,
                                         annotations)
        elif SCALE_DOWN_DEADLINE_ANNOTATION in new_rs.annotations:
            annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = None
        if annotations:
            patch["annotations"] = annotations
        role = "stable" if fully_promoted else "canary"
        _scale(draft, new_rs, target, patch, role=role,
               into=scale_ups if target >= new_rs.spec_replicas else scale_downs)
    if stable_rs is not None and stable_rs is not new_rs:
        stable_patch: dict[str, Any] = {}
        if SCALE_DOWN_DEADLINE_ANNOTATION in stable_rs.annotations:
            stable_patch["annotations"] = {SCALE_DOWN_DEADLINE_ANNOTATION: None}
        _scale(draft, stable_rs, stable_count, stable_patch, role="stable",
               into=scale_ups if stable_count >= stable_rs.spec_replicas else scale_downs)

    # -- services and traffic -------------------------------------------------------------
    canary_target_hash = stable_hash if (aborted or fully_promoted) else pod_hash
    canary_target_rs = stable_rs if (aborted or fully_promoted) else new_rs
    desired_weight = 0 if (aborted or fully_promoted) else planned_weight
    lowering = desired_weight < current_weight
    service_actions, canary_selector = _service_actions(
        draft, stable_hash=stable_hash, canary_target_hash=canary_target_hash,
        canary_target_rs=canary_target_rs, weight_after=min(desired_weight, current_weight),
    )
    traffic: list[Action] = []
    if canary.traffic_routed:
        observation = draft.observed.traffic
        safe_weight = desired_weight
        if not lowering and canary_selector != canary_target_hash:
            safe_weight = current_weight  # never raise onto pods the Service doesn't select
        subsets_differ = observation is not None and (
            canary.istio is not None and canary.istio.destination_rule is not None
            and (observation.canary_subset_hash != canary_target_hash
                 or observation.stable_subset_hash != stable_hash)
        )
        if safe_weight != current_weight or subsets_differ:
            traffic.append(SetTraffic(canary_weight=safe_weight, canary_hash=canary_target_hash,
                                      stable_hash=stable_hash))
            if safe_weight != current_weight:
                draft.event("TrafficWeightUpdated", f"Set weight to {safe_weight}")
        _record_weights(draft, canary_weight=safe_weight, canary_hash=canary_target_hash,
                        stable_hash=stable_hash)

    # -- the rest of the ReplicaSets ------------------------------------------------------
    # What the Services select once this plan's writes are done (the canary Service may have
    # been held on older pods); a ReplicaSet selected by neither keeps no traffic.
    referenced = {stable_hash, canary_target_hash}
    if canary_selector is not None:
        referenced.add(canary_selector)
    if canary.traffic_routed:
        for rs in older:
            if rs.spec_replicas == 0:
                continue
            older_patch: dict[str, Any] = {}
            if fully_promoted or SCALE_DOWN_DEADLINE_ANNOTATION in rs.annotations:
                annotations = {}
                target = _delayed_scale_down(draft, rs, canary.scale_down_delay_seconds,
                                             annotations)
                if annotations:
                    older_patch["annotations"] = annotations
            elif rs.pod_hash in referenced:
                continue  # still selected by a Service: wait until it is switched away
            else:
                target = 0  # an intermediate revision that never got traffic
            _scale(draft, rs, target, older_patch, role="old", into=scale_downs)
    else:
        budget = sum(rs.available for rs in replica_sets_of(new_rs, stable_rs, older)) - (
            rollout.replicas - resolve_fenceposts(
                max_surge=canary.max_surge, max_unavailable=canary.max_unavailable,
                replicas=rollout.replicas)[1]
        )
        for rs in sorted(older, key=lambda item: item.revision):
            if rs.spec_replicas == 0 or budget <= 0:
                continue
            target = max(0, rs.spec_replicas - budget)
            budget -= rs.spec_replicas - target
            _scale(draft, rs, target, {}, role="old", into=scale_downs)

    deletions = _history_deletions(rollout, new_rs=new_rs, stable_rs=stable_rs, older=older)
    if lowering and not fully_promoted:
        # moving traffic off a canary (abort, new revision) before its Service moves; at
        # promotion the stable Service moves first, so traffic never returns to the old pods
        return [*scale_ups, *traffic, *service_actions, *scale_downs, *deletions]
    return [*scale_ups, *service_actions, *traffic, *scale_downs, *deletions]


def replica_sets_of(
    new_rs: ReplicaSetView | None, stable_rs: ReplicaSetView | None,
    older: tuple[ReplicaSetView, ...],
) -> list[ReplicaSetView]:
    unique = {rs.name: rs for rs in (new_rs, stable_rs, *older) if rs is not None}
    return list(unique.values())


def _delayed_scale_down(
    draft: _Draft, rs: ReplicaSetView, delay_seconds: int, annotations: dict[str, Any]
) -> int:
    """Keep ``rs`` up until its scale-down deadline (recorded on it, so restarts keep it)."""
    deadline = rs.scale_down_deadline
    if deadline is None:
        if delay_seconds <= 0:
            return 0
        deadline = draft.now + timedelta(seconds=delay_seconds)
        annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = format_time(deadline)
    if draft.now >= deadline:
        annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = None
        return 0
    draft.wake_at(deadline)
    return rs.spec_replicas


def _scale(
    draft: _Draft, rs: ReplicaSetView, target: int, patch: dict[str, Any], *, role: str,
    into: list[Action],
) -> None:
    body: dict[str, Any] = {}
    metadata = {key: value for key, value in patch.items()
                if key in ("annotations", "ownerReferences")}
    if metadata:
        body["metadata"] = metadata
    if target != rs.spec_replicas:
        body["spec"] = {"replicas": target}
        direction = "up" if target > rs.spec_replicas else "down"
        draft.event("ScalingReplicaSet",
                    f"Scaled {direction} {role} ReplicaSet {rs.name} (revision {rs.revision}) "
                    f"from {rs.spec_replicas} to {target}")
    if body:
        into.append(PatchReplicaSet(name=rs.name, patch=body))


def _service_actions(
    draft: _Draft,
    *,
    stable_hash: str,
    canary_target_hash: str,
    canary_target_rs: ReplicaSetView | None,
    weight_after: int,
) -> tuple[list[Action], str | None]:
    """Point the stable and canary Services at their ReplicaSets' pods.

    The canary Service is only moved onto pods that are available, unless no traffic will
    reach it. Returns the actions and the hash the canary Service selects afterwards.
    """
    rollout = draft.rollout
    actions: list[Action] = []
    canary_selector: str | None = canary_target_hash
    for name, target, is_canary in (
        (rollout.canary.stable_service, stable_hash, False),
        (rollout.canary.canary_service, canary_target_hash, True),
    ):
        if not name:
            continue
        service = draft.observed.services.get(name)
        if service is None:
            continue
        current = service.selector.get(POD_TEMPLATE_HASH_LABEL)
        if is_canary and current != target:
            available = canary_target_rs.available if canary_target_rs is not None else 0
            if weight_after > 0 and available < max(
                1, traffic_weight_to_replicas(rollout.replicas, weight_after)
            ):
                canary_selector = current
                continue
        patch: dict[str, Any] = {}
        if current != target:
            patch["spec"] = {"selector": {POD_TEMPLATE_HASH_LABEL: target}}
        if service.annotations.get(MANAGED_BY_ANNOTATION) != rollout.name:
            patch["metadata"] = {"annotations": {MANAGED_BY_ANNOTATION: rollout.name}}
        if patch:
            actions.append(PatchService(name=name, patch=patch))
        if is_canary:
            canary_selector = target
    if not rollout.canary.canary_service:
        canary_selector = canary_target_hash
    return actions, canary_selector


def _record_weights(draft: _Draft, *, canary_weight: int, canary_hash: str,
                    stable_hash: str) -> None:
    canary_status = draft.status.setdefault("canary", {})
    canary_entry: dict[str, Any] = {"podTemplateHash": canary_hash, "weight": canary_weight}
    stable_entry: dict[str, Any] = {"podTemplateHash": stable_hash,
                                    "weight": MAX_WEIGHT - canary_weight}
    if draft.rollout.canary.canary_service:
        canary_entry["serviceName"] = draft.rollout.canary.canary_service
    if draft.rollout.canary.stable_service:
        stable_entry["serviceName"] = draft.rollout.canary.stable_service
    canary_status["weights"] = {"canary": canary_entry, "stable": stable_entry}


def _history_deletions(
    rollout: Rollout, *, new_rs: ReplicaSetView | None, stable_rs: ReplicaSetView | None,
    older: tuple[ReplicaSetView, ...],
) -> list[Action]:
    idle = sorted((rs for rs in older if rs.owned and rs.spec_replicas == 0 and rs.replicas == 0
                   and rs is not new_rs and rs is not stable_rs), key=lambda rs: rs.revision)
    surplus = len(idle) - rollout.revision_history_limit
    return [DeleteReplicaSet(name=rs.name) for rs in idle[:max(0, surplus)]]


def _finish_status(
    draft: _Draft, *, new_rs: ReplicaSetView | None, revision: int, aborted: bool,
    fully_promoted: bool,
) -> None:
    rollout = draft.rollout
    status = draft.status
    replica_sets = draft.observed.replica_sets
    status["observedGeneration"] = str(rollout.generation)
    status["replicas"] = sum(rs.replicas for rs in replica_sets)
    status["HPAReplicas"] = status["replicas"]
    status["updatedReplicas"] = new_rs.replicas if new_rs is not None else 0
    status["readyReplicas"] = sum(rs.ready for rs in replica_sets)
    status["availableReplicas"] = sum(rs.available for rs in replica_sets)
    status["selector"] = selector_string(rollout.selector)
    if not rollout.canary.steps:
        status.pop("currentStepIndex", None)
    if not status.get("canary"):
        status["canary"] = {}
    now = draft.now_text
    conditions = remove_condition(list(status.get("conditions") or []), INVALID_SPEC)
    rs_name = new_rs.name if new_rs is not None else f"{rollout.name}-{status['currentPodHash']}"
    paused = rollout.paused or bool(status.get("pauseConditions"))
    if aborted:
        conditions = set_condition(
            conditions, type_=PROGRESSING, status=False, reason=ROLLOUT_ABORTED_REASON,
            message=f"Rollout aborted update to revision {revision}"
            + (f": {detail}" if (detail := _abort_detail(status)) else ""), now=now)
    elif paused:
        conditions = set_condition(conditions, type_=PROGRESSING, status="Unknown",
                                   reason="RolloutPaused", message="Rollout is paused", now=now)
    elif fully_promoted:
        conditions = set_condition(
            conditions, type_=PROGRESSING, status=True, reason="NewReplicaSetAvailable",
            message=f'RolloutCompleted: ReplicaSet "{rs_name}" has successfully progressed.',
            now=now)
    else:
        conditions = set_condition(conditions, type_=PROGRESSING, status=True,
                                   reason="ReplicaSetUpdated",
                                   message=f'ReplicaSet "{rs_name}" is progressing.', now=now)
    _, unavailable = resolve_fenceposts(max_surge=rollout.canary.max_surge,
                                        max_unavailable=rollout.canary.max_unavailable,
                                        replicas=rollout.replicas)
    has_minimum = status["availableReplicas"] >= rollout.replicas - unavailable
    conditions = set_condition(
        conditions, type_=AVAILABLE, status=has_minimum, reason="AvailableReason",
        message="Rollout has minimum availability" if has_minimum
        else "Rollout does not have minimum availability", now=now)
    conditions = set_condition(
        conditions, type_=PAUSED, status=paused,
        reason="RolloutPaused" if paused else "RolloutResumed",
        message="Rollout is paused" if paused else "Rollout is resumed", now=now)
    status["conditions"] = conditions
    phase, message = calculate_phase(rollout, status)
    healthy = phase == "Healthy"
    conditions = set_condition(
        conditions, type_=HEALTHY, status=healthy, reason="RolloutHealthy",
        message="Rollout is healthy" if healthy else "Rollout is not healthy", now=now)
    completed = healthy and fully_promoted
    conditions = set_condition(
        conditions, type_=COMPLETED, status=completed, reason="RolloutCompleted",
        message=(f"Rollout completed update to revision {revision} "
                 f"({status['currentPodHash']}): Rollout is Completed") if completed
        else "Rollout not completed", now=now)
    status["conditions"] = conditions
    status["phase"] = phase
    if message:
        status["message"] = message
    else:
        status.pop("message", None)
