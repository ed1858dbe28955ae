"""Flagger's canary state machine: one reconcile of one Canary, decided purely.

``advance(canary, observed, now)`` follows Flagger's ``advanceCanary``: make the owned
objects right, then by phase — Initializing (wait for the primary, scale the target to zero,
Initialized), a new revision (scale the target up, Progressing), readiness of both
Deployments, a restart when the template changes mid-analysis, skipAnalysis, Promoting
(traffic back to the primary, at once or by stepWeightPromotion), Finalising (target to zero,
Succeeded), the failed-checks threshold (rollback), the metric checks, then one move of the
strategy (canary weights, A/B iterations with match, blue/green iterations, mirroring).

Flagger runs this on a ticker every ``analysis.interval``; shiftd keeps the same rhythm from
the status: past initialisation, a step happens only once ``lastTransitionTime`` (which each
status write stamps) is an interval old, so a restarted daemon neither hurries nor repeats.
Metric values are I/O: a step that needs them returns ``needs_checks`` and is decided again
with ``Observed.checks`` filled; the webhook gates (``gates``) ask for their answers the same
way. A ``lastAppliedSpec`` written by Flagger (``hashing``) is adopted: the analysis carries
on from the status and shiftd's hash is recorded with the next write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.flagger import gates
from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import Action, CanaryEvent, Put, ScaleTarget, Step
from shiftd.decide.flagger.hashing import template_hash, written_by_flagger
from shiftd.decide.flagger.objects import owned_puts
from shiftd.decide.flagger.observed import Observed
from shiftd.decide.flagger.routes import Routes, observe_routes, virtual_service
from shiftd.decide.flagger.scaling import primary_hpa_puts, scale_up_replicas
from shiftd.decide.flagger.workloads import (
    not_ready,
    past_deadline,
    primary_name,
    promoted,
    replicas,
)
from shiftd.model.flagger.canary import TOTAL_WEIGHT, Canary

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Tick:
    """The facts every phase handler reads."""

    canary: Canary
    observed: Observed
    target: JsonObject
    now: datetime
    revision: str  # hash of the target's template
    routes: Routes

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.canary.spec.analysis.interval_seconds)

    @property
    def next_tick(self) -> datetime:
        return self.now + self.interval

    def info(self, message: str) -> CanaryEvent:
        return CanaryEvent(message)

    def route(self, primary: int, canary: int, *, mirrored: bool = False) -> Put:
        return Put("VirtualService", virtual_service(
            self.canary, self.observed.virtual_service,
            Routes(primary=primary, canary=canary, mirrored=mirrored)))


def advance(canary: Canary, observed: Observed, *, now: datetime) -> Step:
    """The writes this reconcile of a live (not deleted) Canary needs."""
    if canary.spec.suspend:
        return Step()  # Flagger skips a suspended Canary entirely
    target = observed.target
    interval = timedelta(seconds=canary.spec.analysis.interval_seconds)
    if target is None:
        name = canary.spec.target_ref.name
        return Step(events=(CanaryEvent(
            f"deployment {name}.{canary.namespace} get query error: deployments.apps "
            f'"{name}" not found', warning=True),), requeue_at=now + interval)
    initializing = canary.phase in ("", st.INITIALIZING)
    routed = not initializing or canary.spec.skip_analysis or (
        observed.primary is not None and not_ready(
            observed.primary,
            threshold_percent=canary.spec.analysis.primary_ready_threshold) is None)
    setup = tuple(owned_puts(canary, observed, routed=routed))
    tick = _Tick(canary=canary, observed=observed, target=target, now=now,
                 revision=template_hash((target.get("spec") or {}).get("template") or {}),
                 routes=observe_routes(canary, observed.virtual_service))
    step = _by_phase(tick)
    return replace(step, actions=setup + step.actions)


def _by_phase(tick: _Tick) -> Step:
    canary = tick.canary
    if canary.phase == "":
        return Step(status=st.with_phase(canary, st.INITIALIZING, tick.now), again=True)
    if canary.phase == st.INITIALIZING:
        return _initialize(tick)
    applied = str(canary.status.get("lastAppliedSpec") or "")
    if written_by_flagger(applied):
        # Taken over from Flagger: its hash cannot be recomputed, so the template it saw is
        # taken to be the one there now; ours is recorded with this step (or alone).
        step = _advance(tick, changed=False)
        return replace(step, status={**(step.status or {}), "lastAppliedSpec": tick.revision}
                       if "lastAppliedSpec" not in (step.status or {}) else step.status)
    # Flagger's hasSpecChanged: going back to the promoted template starts nothing
    changed = (applied != tick.revision
               and canary.status.get("lastPromotedSpec") != tick.revision)
    return _advance(tick, changed=changed)


def _advance(tick: _Tick, *, changed: bool) -> Step:
    """Past initialisation: one step at most per interval."""
    canary = tick.canary
    if canary.phase not in st.ACTIVE and not changed:
        return Step()
    since = st.parse_timestamp(canary.status.get("lastTransitionTime"))
    if since is not None and tick.now < since + tick.interval:
        return Step(requeue_at=since + tick.interval)
    waiting = _primary_waiting(tick)
    if waiting is not None:
        return waiting
    if canary.phase not in (st.PROGRESSING, st.WAITING_PROMOTION, st.PROMOTING, st.FINALISING):
        held, passed = gates.confirm_rollout(canary, tick.observed, now=tick.now)
        if held is not None:
            return held
        start = _new_revision(tick)
        return replace(start, events=passed + start.events)
    if canary.phase in (st.PROGRESSING, st.WAITING_PROMOTION) and changed:
        return _restart(tick)
    return _analyse(tick)


def _initialize(tick: _Tick) -> Step:
    canary, primary = tick.canary, tick.observed.primary
    if primary is None:
        return Step(requeue_at=tick.next_tick)  # created by this pass; its status follows
    if not canary.spec.skip_analysis:
        waiting = _primary_waiting(tick)
        if waiting is not None:
            return waiting
    return Step(actions=(ScaleTarget(0),),
                status=st.synced(canary, phase=st.INITIALIZED, applied=tick.revision,
                                 now=tick.now),
                events=(tick.info(f"Initialization done! {canary.path}"),),
                requeue_at=tick.next_tick)


def _primary_waiting(tick: _Tick) -> Step | None:
    canary, primary = tick.canary, tick.observed.primary
    if canary.spec.skip_analysis or primary is None:
        return None
    found = not_ready(primary, threshold_percent=canary.spec.analysis.primary_ready_threshold)
    if found is not None:
        reason = f"{primary_name(canary)}.{canary.namespace} not ready: {found}"
    elif replicas(primary) == 0:
        reason = f"halt {canary.path} advancement: primary deployment is scaled to zero"
    else:
        return None
    return Step(events=(CanaryEvent(reason, warning=True),), requeue_at=tick.next_tick)


def _new_revision(tick: _Tick) -> Step:
    canary = tick.canary
    return Step(actions=(ScaleTarget(scale_up_replicas(canary, tick.observed)),),
                status=st.synced(canary, phase=st.PROGRESSING, applied=tick.revision,
                                 now=tick.now),
                events=(tick.info(f"New revision detected! Scaling up "
                                  f"{canary.spec.target_ref.name}.{canary.namespace}"),),
                requeue_at=tick.next_tick)


def _restart(tick: _Tick) -> Step:
    canary = tick.canary
    return Step(actions=(tick.route(TOTAL_WEIGHT, 0),),
                status=st.synced(canary, phase=st.PROGRESSING, applied=tick.revision,
                                 now=tick.now),
                events=(tick.info(f"New revision detected! Restarting analysis for "
                                  f"{canary.spec.target_ref.name}.{canary.namespace}"),),
                requeue_at=tick.next_tick)


def _analyse(tick: _Tick) -> Step:
    canary, status = tick.canary, tick.canary.status
    stuck = past_deadline(tick.target, deadline_seconds=canary.spec.progress_deadline_seconds,
                          now=tick.now)
    found = stuck or not_ready(tick.target,
                               threshold_percent=canary.spec.analysis.canary_ready_threshold)
    if found is not None:
        reason = (f"canary deployment {canary.spec.target_ref.name}.{canary.namespace} "
                  f"not ready: {found}")
        if stuck is not None:  # Flagger's non-retriable readiness error
            return rollback(tick, reason=reason)
        return Step(events=(CanaryEvent(reason, warning=True),), requeue_at=tick.next_tick)
    if canary.spec.skip_analysis and canary.phase == st.PROGRESSING:
        return _skip(tick)
    manual = gates.rollback_requested(canary, tick.observed)
    if isinstance(manual, Step):
        return manual
    if manual:
        return rollback(tick, reason=f"Rolling back {canary.path} manual webhook invoked")
    if canary.phase == st.PROMOTING:
        return _promotion_traffic(tick)
    if canary.phase == st.FINALISING:
        return Step(actions=(ScaleTarget(0),), status=st.with_phase(canary, st.SUCCEEDED,
                                                                    tick.now),
                    events=(tick.info(f"Promotion completed! Scaling down "
                                      f"{canary.spec.target_ref.name}.{canary.namespace}"),),
                    requeue_at=tick.next_tick)
    failed = int(status.get("failedChecks") or 0)
    if failed >= canary.spec.analysis.effective_threshold:
        return rollback(tick, reason=f"Rolling back {canary.path} failed checks threshold "
                                     f"reached {failed}")
    return _checked(tick)


def _checked(tick: _Tick) -> Step:
    canary, analysis = tick.canary, tick.canary.spec.analysis
    iterations = int(canary.status.get("iterations") or 0)
    starting = (tick.routes.canary == 0 and iterations == 0
                and not (analysis.mirror and tick.routes.mirrored))
    verdict = tick.observed.checks.get("pre-rollout" if starting else "analysis")
    if verdict is None:
        return Step(needs_checks="pre-rollout" if starting else "analysis")
    if not verdict.passed:
        failed = int(canary.status.get("failedChecks") or 0) + 1
        return Step(status=st.counters(tick.now, failedChecks=failed), events=verdict.events,
                    requeue_at=tick.next_tick)
    if starting:
        first = (tick.info(f"Starting canary analysis for {canary.spec.target_ref.name}."
                           f"{canary.namespace}"), *verdict.events)
        move = _strategy(tick)
        return replace(move, events=first + move.events)
    return _strategy(tick)


def _strategy(tick: _Tick) -> Step:
    analysis = tick.canary.spec.analysis
    if analysis.iterations > 0 and analysis.match:
        return _ab_testing(tick)
    if analysis.iterations > 0:
        return _blue_green(tick)
    return _canary_weights(tick)


def next_step_weight(canary: Canary, canary_weight: int) -> int:
    """Flagger's nextStepWeight: stepWeight, else the next of stepWeights."""
    analysis = canary.spec.analysis
    if analysis.step_weight > 0 or not analysis.step_weights:
        return analysis.step_weight
    room = TOTAL_WEIGHT - canary_weight
    if room == 0:
        return 1
    for weight in analysis.step_weights:
        if weight > canary_weight:
            return min(room, weight - canary_weight)
    return room


def _canary_weights(tick: _Tick) -> Step:
    canary, routes = tick.canary, tick.routes
    step = next_step_weight(canary, routes.canary)
    if step <= 0:
        return Step(requeue_at=tick.next_tick)  # Flagger moves nothing without a step
    if not routes.mirrored and canary.phase not in (st.PROMOTING, st.WAITING_PROMOTION,
                                                    st.FINALISING):
        held = gates.confirm_traffic_increase(canary, tick.observed, now=tick.now)
        if held is not None:
            return held
    if routes.canary >= canary.spec.analysis.effective_max_weight:
        return _promote(tick)
    mirrored = False
    if canary.spec.analysis.mirror and routes.canary == 0 and not routes.mirrored:
        primary, weight, mirrored = TOTAL_WEIGHT, 0, True  # one mirrored step first
    else:
        primary = max(0, routes.primary - step)
        weight = min(TOTAL_WEIGHT, routes.canary + step)
    return Step(actions=(tick.route(primary, weight, mirrored=mirrored),),
                status=st.counters(tick.now, canaryWeight=weight),
                events=(tick.info(f"Advance {canary.path} canary weight {weight}"),),
                requeue_at=tick.next_tick)


def _iteration(tick: _Tick, actions: tuple[Action, ...]) -> Step:
    canary = tick.canary
    done = int(canary.status.get("iterations") or 0) + 1
    return Step(actions=actions, status=st.counters(tick.now, iterations=done),
                events=(tick.info(f"Advance {canary.path} canary iteration {done}/"
                                  f"{canary.spec.analysis.iterations}"),),
                requeue_at=tick.next_tick)


def _ab_testing(tick: _Tick) -> Step:
    done, wanted = int(tick.canary.status.get("iterations") or 0), \
        tick.canary.spec.analysis.iterations
    if wanted > done:
        return _iteration(tick, (tick.route(0, TOTAL_WEIGHT),))
    if wanted == done:
        return _promote(tick)
    return Step(requeue_at=tick.next_tick)


def _blue_green(tick: _Tick) -> Step:
    canary, analysis = tick.canary, tick.canary.spec.analysis
    done = int(canary.status.get("iterations") or 0)
    if analysis.iterations > done:
        mirror = analysis.mirror and not tick.routes.mirrored
        return _iteration(tick, (tick.route(TOTAL_WEIGHT, 0, mirrored=True),) if mirror else ())
    held, passed = gates.confirm_promotion(canary, tick.observed, now=tick.now)
    if held is not None:
        return held
    if analysis.iterations == done:
        message = ("Stop traffic mirroring and route all traffic to canary" if analysis.mirror
                   else "Routing all traffic to canary")
        return Step(actions=(tick.route(0, TOTAL_WEIGHT),),
                    status=st.counters(tick.now, iterations=done + 1),
                    events=(*passed, tick.info(message)), requeue_at=tick.next_tick)
    return _promote(tick, confirmed=True)


def _promote(tick: _Tick, *, confirmed: bool = False) -> Step:
    """Copy the target's template to the primary (after the confirm-promotion gate, unless
    this interval already passed it)."""
    canary, primary = tick.canary, tick.observed.primary
    if primary is None:
        return Step(requeue_at=tick.next_tick)
    held, passed = (None, ()) if confirmed else gates.confirm_promotion(
        canary, tick.observed, now=tick.now)
    if held is not None:
        return held
    hpa = primary_hpa_puts(canary, tick.observed, init=False)
    return Step(actions=(Put("Deployment", promoted(canary, primary, tick.target)), *hpa),
                status=st.with_phase(canary, st.PROMOTING, tick.now),
                events=(*passed, tick.info(
                    f"Copying {canary.spec.target_ref.name}.{canary.namespace} template spec "
                    f"to {primary_name(canary)}.{canary.namespace}")),
                requeue_at=tick.next_tick)


def _promotion_traffic(tick: _Tick) -> Step:
    canary, routes = tick.canary, tick.routes
    step = canary.spec.analysis.step_weight_promotion
    if step == 0:
        return Step(actions=(tick.route(TOTAL_WEIGHT, 0),),
                    status=st.with_phase(canary, st.FINALISING, tick.now),
                    events=(tick.info("Routing all traffic to primary"),),
                    requeue_at=tick.next_tick)
    if routes.canary <= 0:
        return Step(requeue_at=tick.next_tick)
    primary = min(TOTAL_WEIGHT, routes.primary + step)
    weight = max(0, routes.canary - step)
    fields = (st.with_phase(canary, st.FINALISING, tick.now) if primary == TOTAL_WEIGHT
              else st.counters(tick.now, canaryWeight=weight))
    return Step(actions=(tick.route(primary, weight),), status=fields,
                events=(tick.info(f"Advance {canary.path} primary weight {primary}"),),
                requeue_at=tick.next_tick)


def _skip(tick: _Tick) -> Step:
    canary, primary = tick.canary, tick.observed.primary
    actions: list[Action] = [tick.route(TOTAL_WEIGHT, 0)]
    if primary is not None:
        actions.append(Put("Deployment", promoted(canary, primary, tick.target)))
    actions.append(ScaleTarget(0))
    return Step(actions=tuple(actions), status=st.with_phase(canary, st.SUCCEEDED, tick.now),
                events=(tick.info(f"Copying {canary.spec.target_ref.name}.{canary.namespace} "
                                  f"template spec to {primary_name(canary)}."
                                  f"{canary.namespace}"),
                        tick.info(f"Promotion completed! Canary analysis was skipped for "
                                  f"{canary.spec.target_ref.name}.{canary.namespace}")),
                requeue_at=tick.next_tick)


def rollback(tick: _Tick, *, reason: str) -> Step:
    """All traffic to the primary, the target to zero, Failed (the revision recorded, so it
    is not tried again until the template changes)."""
    canary = tick.canary
    fields = st.synced(canary, phase=st.FAILED, applied=tick.revision, now=tick.now)
    return Step(actions=(tick.route(TOTAL_WEIGHT, 0), ScaleTarget(0)), status=fields,
                events=(CanaryEvent(reason, warning=True),
                        CanaryEvent(f"Canary failed! Scaling down {canary.path}",
                                    warning=True)),
                requeue_at=tick.next_tick)
