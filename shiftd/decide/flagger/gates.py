"""Flagger's webhook gates, decided purely from their answers (which the controller fetches
when a step asks with ``needs_checks``):

- ``confirm-rollout`` before a new revision starts: refused → Waiting ("Halt … waiting for
  approval"); approved from Waiting → the revision starts ("Confirm-rollout check … passed");
- ``confirm-traffic-increase`` before each weight increase: refused → no move this interval;
- ``confirm-promotion`` before the template is copied: refused → WaitingPromotion ("Halt …
  waiting for promotion approval"), the analysis going on meanwhile;
- ``rollback``: a hook answering OK while Progressing, Waiting or WaitingPromotion rolls the
  Canary back ("Rolling back … manual webhook invoked").

Each function returns ``None`` when the gate lets the step go on (no hook of that type, or
approved), else the Step to take instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import CanaryEvent, CheckKind, Step
from shiftd.decide.flagger.observed import Observed, Verdict
from shiftd.model.flagger.canary import Canary


def has_hooks(canary: Canary, kind: str) -> bool:
    return any(hook.get("type") == kind for hook in canary.spec.analysis.webhooks)


def _answer(canary: Canary, observed: Observed, kind: CheckKind) -> Verdict | Step | None:
    """The gate's verdict; a Step asking for it; None when there is no such hook."""
    if not has_hooks(canary, kind):
        return None
    verdict = observed.checks.get(kind)
    return Step(needs_checks=kind) if verdict is None else verdict


def _later(canary: Canary, now: datetime) -> datetime:
    return now + timedelta(seconds=canary.spec.analysis.interval_seconds)


def confirm_rollout(canary: Canary, observed: Observed, *, now: datetime
                    ) -> tuple[Step | None, tuple[CanaryEvent, ...]]:
    """(the Step instead of starting, or None to start; Events to add when starting)."""
    answer = _answer(canary, observed, "confirm-rollout")
    if answer is None or isinstance(answer, Step):
        return answer, ()
    if answer.passed:
        passed = (CanaryEvent(f"Confirm-rollout check {answer.hook} passed"),)
        return None, passed if canary.phase == st.WAITING else ()
    if canary.phase == st.WAITING:
        return Step(requeue_at=_later(canary, now)), ()
    return Step(status=st.with_phase(canary, st.WAITING, now),
                events=(CanaryEvent(f"Halt {canary.path} advancement waiting for approval "
                                    f"{answer.hook}", warning=True),),
                requeue_at=_later(canary, now)), ()


def confirm_traffic_increase(canary: Canary, observed: Observed, *, now: datetime
                             ) -> Step | None:
    answer = _answer(canary, observed, "confirm-traffic-increase")
    if answer is None or isinstance(answer, Step):
        return answer
    if answer.passed:
        return None
    return Step(events=(CanaryEvent(f"Halt {canary.path} advancement waiting for traffic "
                                    f"increase approval {answer.hook}", warning=True),),
                requeue_at=_later(canary, now))


def confirm_promotion(canary: Canary, observed: Observed, *, now: datetime
                      ) -> tuple[Step | None, tuple[CanaryEvent, ...]]:
    """(the Step instead of promoting, or None to promote; Events to add when promoting)."""
    answer = _answer(canary, observed, "confirm-promotion")
    if answer is None or isinstance(answer, Step):
        return answer, ()
    if answer.passed:
        return None, (CanaryEvent(f"Confirm-promotion check {answer.hook} passed"),)
    if canary.phase == st.WAITING_PROMOTION:
        return Step(requeue_at=_later(canary, now)), ()
    return Step(status=st.with_phase(canary, st.WAITING_PROMOTION, now),
                events=(CanaryEvent(f"Halt {canary.path} advancement waiting for promotion "
                                    f"approval {answer.hook}", warning=True),),
                requeue_at=_later(canary, now)), ()


def rollback_requested(canary: Canary, observed: Observed) -> Step | bool:
    """Whether a rollback hook asks for a rollback (or the Step asking for its answer)."""
    if canary.phase not in (st.PROGRESSING, st.WAITING, st.WAITING_PROMOTION):
        return False
    answer = _answer(canary, observed, "rollback")
    if answer is None:
        return False
    if isinstance(answer, Step):
        return answer
    return answer.passed
