"""The canary step machine: how far a Rollout's steps can go in one planning pass.

``enter_steps`` starts a pass: it records the current revision in the status (resetting the
steps when the template or the steps changed), applies a full promotion or an abort someone
asked for, and returns the first ``Decision``. ``run_steps`` then walks the steps as far as the
observed state allows:

* ``setWeight`` / ``setCanaryScale`` complete once the ReplicaSets have the counts the step
  asks for; with a router, a ``setWeight`` also moves the planned weight (one move per pass:
  the next waits until this one is written and observed);
* ``pause`` records a pause condition and waits for its duration or a promotion;
* ``analysis`` follows its AnalysisRun: success completes the step, failure aborts, an
  inconclusive run pauses for a human;
* ``setHeaderRoute`` / ``setMirrorRoute`` complete at once: the managed routes are derived
  from the completed steps (``managed.py``) and written with the traffic.

Background analysis runs from its ``startingStep`` on, as reached by the steps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from shiftd.decide.rollout.analysis import (
    BACKGROUND_STATUS,
    INCONCLUSIVE_PAUSE_REASON,
    STEP_STATUS,
    Verdict,
    background_key,
    follow_run,
    step_key,
)
from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.hashing import rollout_steps_hash
from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.revisions import Revisions
from shiftd.decide.rollout.status import CANARY_PAUSE_REASON, ROLLOUT_ABORTED_REASON
from shiftd.decide.rollout.targets import at_desired_counts, replica_targets
from shiftd.model.argo.rollout import (
    AnalysisStep,
    PauseStep,
    SetCanaryScaleStep,
    SetHeaderRouteStep,
    SetMirrorRouteStep,
    SetWeightStep,
    Step,
)
from shiftd.model.argo.routes import describe_route_step


def describe_step(step: Step) -> str:
    """A step as the RolloutStepCompleted Event names it."""
    if isinstance(step, SetWeightStep):
        return f"setWeight: {step.weight}"
    if isinstance(step, PauseStep):
        if step.duration_seconds is None:
            return "pause: {}"
        return f"pause: {{duration: {step.duration_seconds:g}s}}"
    if isinstance(step, SetCanaryScaleStep):
        return "setCanaryScale"
    if isinstance(step, SetHeaderRouteStep | SetMirrorRouteStep):
        return describe_route_step(step)
    return "analysis"


# --- entering a pass ----------------------------------------------------------------------------

def enter_steps(draft: Draft, revisions: Revisions) -> Decision:
    """Record the current revision and find the step this pass starts from."""
    _track_revision(draft, revisions)
    status = draft.status
    step_count = len(draft.rollout.canary.steps)
    index = min(max(int(status.get("currentStepIndex", 0) or 0), 0), step_count)
    if status.get("promoteFull"):
        index = step_count
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        status["abort"] = False
    aborted = bool(status.get("abort")) and not revisions.fully_promoted
    if not status.get("abort"):
        status.pop("abortedAt", None)
    if aborted:
        index = begin_abort(draft, revisions.revision)
    traffic = draft.observed.traffic
    weight = traffic.canary_weight if traffic is not None else 0
    return Decision(revisions=revisions, index=index, aborted=aborted, current_weight=weight,
                    planned_weight=weight)


def _track_revision(draft: Draft, revisions: Revisions) -> None:
    """A new template or new steps start the steps over; a first revision is stable at once."""
    status = draft.status
    step_count = len(draft.rollout.canary.steps)
    pod_hash = revisions.pod_hash
    step_hash = rollout_steps_hash(draft.rollout)
    if status.get("currentPodHash") != pod_hash or status.get("currentStepHash") != step_hash:
        if status.get("currentPodHash") not in (None, pod_hash) and not revisions.first_stable:
            draft.event("RolloutUpdated", f"Rollout updated to revision {revisions.revision}")
        _reset_for_new_revision(status)
        status["currentStepIndex"] = step_count if revisions.fully_promoted else 0
    status["currentPodHash"] = pod_hash
    status["currentStepHash"] = step_hash
    if revisions.first_stable:
        status["stableRS"] = pod_hash
        status["currentStepIndex"] = step_count


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


# --- walking the steps --------------------------------------------------------------------------

def run_steps(draft: Draft, decision: Decision) -> Decision:
    """Walk the steps, then follow background analysis from where they got to."""
    decision = _walk_steps(draft, decision)
    decision = _follow_background_analysis(draft, decision)
    if not draft.status.get("pauseConditions"):
        draft.status.pop("pauseConditions", None)
    return decision


def _walk_steps(draft: Draft, decision: Decision) -> Decision:
    rollout = draft.rollout
    steps = rollout.canary.steps
    draft.status["currentStepIndex"] = decision.index
    held = any(c.get("reason") == INCONCLUSIVE_PAUSE_REASON
               for c in draft.status.get("pauseConditions") or [])  # waiting for a human
    if decision.fully_promoted or decision.aborted or rollout.paused or held:
        return decision
    while not decision.aborted and decision.index < len(steps):
        step = steps[decision.index]
        decision, completed = _take_step(draft, decision, step=step)
        if not completed:
            break
        decision = replace(decision, index=decision.index + 1)
        draft.status["currentStepIndex"] = decision.index
        draft.event("RolloutStepCompleted", f"Rollout step {decision.index}/{len(steps)} "
                    f"completed ({describe_step(step)})")
    return decision


def _take_step(draft: Draft, decision: Decision, *, step: Step) -> tuple[Decision, bool]:
    """Carry out the current step as far as possible; says whether it completed."""
    if isinstance(step, SetWeightStep | SetCanaryScaleStep):
        return _scale_or_weight_step(draft, decision, step=step)
    if isinstance(step, PauseStep):
        return decision, _pause_step(draft, step, index=decision.index)
    if isinstance(step, SetHeaderRouteStep | SetMirrorRouteStep):
        return decision, True  # the route follows from the completed steps (``managed``)
    assert isinstance(step, AnalysisStep)
    return _analysis_step(draft, decision)


def _scale_or_weight_step(
    draft: Draft, decision: Decision, *, step: SetWeightStep | SetCanaryScaleStep
) -> tuple[Decision, bool]:
    rollout = draft.rollout
    targets = replica_targets(rollout, decision.revisions, index=decision.index, aborted=False)
    if not at_desired_counts(rollout, decision.revisions, targets=targets):
        return decision, False
    if rollout.canary.traffic_routed and isinstance(step, SetWeightStep) \
            and decision.planned_weight != step.weight:
        if decision.weight_moved:
            draft.again = True  # one weight move per reconcile: the next one goes on
            return decision, False
        return replace(decision, planned_weight=step.weight), True
    return decision, True


def _pause_step(draft: Draft, step: PauseStep, *, index: int) -> bool:
    status = draft.status
    condition = _pause_condition(status)
    if condition is None:
        if status.get("controllerPause"):
            status["controllerPause"] = False  # promoted: the pause condition was cleared
            return True
        if step.duration_seconds is not None and step.duration_seconds <= 0:
            return True  # a pause of no time has nothing to wait for (and planning again at
            # the same instant must not find it over: every plan is a fixed point)
        status["pauseConditions"] = [
            *(status.get("pauseConditions") or []),
            {"reason": CANARY_PAUSE_REASON, "startTime": draft.now_text},
        ]
        status["controllerPause"] = True
        draft.event("RolloutPaused", f"Paused at step {index}")
        if step.duration_seconds is not None:
            draft.wake_at(draft.now + timedelta(seconds=step.duration_seconds))
        return False
    if step.duration_seconds is None:
        return False
    started = parse_time(str(condition.get("startTime", ""))) or draft.now
    ends = started + timedelta(seconds=step.duration_seconds)
    if draft.now < ends:
        draft.wake_at(ends)
        return False
    remaining = [c for c in status.get("pauseConditions") or []
                 if c.get("reason") != CANARY_PAUSE_REASON]
    status["pauseConditions"] = remaining
    status["controllerPause"] = bool(remaining)
    return True


def _pause_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    for condition in status.get("pauseConditions") or []:
        if condition.get("reason") == CANARY_PAUSE_REASON:
            return dict(condition)
    return None


def _analysis_step(draft: Draft, decision: Decision) -> tuple[Decision, bool]:
    observed, status, index = draft.observed, draft.status, decision.index
    verdict = follow_run(draft.rollout, status=status, runs=observed.analysis_runs,
                         spec=observed.analysis_specs.get(step_key(index), {}),
                         pod_hash=decision.revisions.pod_hash,
                         revision=decision.revisions.revision, step_index=index)
    draft.analysis_actions.extend(verdict.actions)
    draft.current_runs.add(status["canary"][STEP_STATUS]["name"])
    if verdict.outcome == "done":
        status["canary"].pop(STEP_STATUS, None)
        return decision, True
    _act_on_verdict(draft, verdict)
    if verdict.outcome == "abort":
        decision = _aborting(draft, decision)
    return decision, False


def _follow_background_analysis(draft: Draft, decision: Decision) -> Decision:
    """Background analysis, from its starting step (as reached by the steps)."""
    background = draft.rollout.canary.background_analysis
    if (not background or decision.fully_promoted or decision.aborted
            or decision.index < int(background.get("startingStep") or 0)):
        return decision
    observed, status = draft.observed, draft.status
    verdict = follow_run(draft.rollout, status=status, runs=observed.analysis_runs,
                         spec=observed.analysis_specs.get(background_key(), {}),
                         pod_hash=decision.revisions.pod_hash,
                         revision=decision.revisions.revision, step_index=None)
    draft.analysis_actions.extend(verdict.actions)
    draft.current_runs.add(status["canary"][BACKGROUND_STATUS]["name"])
    _act_on_verdict(draft, verdict)
    if verdict.outcome == "abort":
        decision = _aborting(draft, decision)
    return decision


def _act_on_verdict(draft: Draft, verdict: Verdict) -> None:
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


# --- aborting -----------------------------------------------------------------------------------

def _aborting(draft: Draft, decision: Decision) -> Decision:
    return replace(decision, aborted=True,
                   index=begin_abort(draft, decision.revisions.revision))


def begin_abort(draft: Draft, revision: int) -> int:
    """Aborted: weight to 0 (done by the writes), pauses cleared; returns the step index."""
    status = draft.status
    if "abortedAt" not in status:
        status["abortedAt"] = draft.now_text
        detail = abort_detail(status)
        draft.event(ROLLOUT_ABORTED_REASON,
                    f"Aborted: Rollout aborted update to revision {revision}"
                    + (f": {detail}" if detail else ""), warning=True)
    status.pop("pauseConditions", None)
    status["controllerPause"] = False
    status["currentStepIndex"] = 0
    return 0


def abort_detail(status: dict[str, Any]) -> str:
    """The failed analysis behind an abort, if that is what caused it."""
    canary_status = status.get("canary") or {}
    for key in (STEP_STATUS, BACKGROUND_STATUS):
        entry = canary_status.get(key) or {}
        if entry.get("status") in ("Failed", "Error"):
            return str(entry.get("message") or f"AnalysisRun {entry.get('name')} "
                       f"{entry.get('status')}")
    return ""
