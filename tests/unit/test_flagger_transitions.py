"""Flagger's state machine as a table: from one phase (and weight, failed checks, template),
the one transition an interval later, and the Event that says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.machine import advance
from shiftd.decide.flagger.observed import Verdict
from shiftd.decide.flagger.routes import Routes, virtual_service
from tests.unit.test_flagger_machine import MINUTE, World

NEW = "stefanprodan/podinfo:3.1.1"


def at(phase: str, *, weight: int = 0, failed: int = 0, new_template: bool = False) -> World:
    """The seed's Canary initialised, then put in ``phase`` as of one interval ago."""
    world = World.seed(threshold=2)
    world.initialise()
    if new_template:
        world.set_image(NEW)
    vs = world.objects[("VirtualService", "podinfo")]
    world.objects[("VirtualService", "podinfo")] = virtual_service(
        world.parsed, vs, Routes(primary=100 - weight, canary=weight, mirrored=False))
    world.status.update(phase=phase, canaryWeight=weight, failedChecks=failed,
                        lastTransitionTime=st.timestamp(world.now))
    world.now += MINUTE
    return world


@pytest.mark.parametrize(("world", "phase", "event"), [
    pytest.param(at(st.INITIALIZED, new_template=True), st.PROGRESSING,
                 "New revision detected! Scaling up podinfo.test", id="new revision"),
    pytest.param(at(st.SUCCEEDED, new_template=True), st.PROGRESSING,
                 "New revision detected! Scaling up podinfo.test", id="after a success"),
    pytest.param(at(st.FAILED, new_template=True), st.PROGRESSING,
                 "New revision detected! Scaling up podinfo.test", id="after a failure"),
    pytest.param(at(st.PROGRESSING), st.PROGRESSING,
                 "Advance podinfo.test canary weight 10", id="first step"),
    pytest.param(at(st.PROGRESSING, weight=30), st.PROGRESSING,
                 "Advance podinfo.test canary weight 40", id="next step"),
    pytest.param(at(st.PROGRESSING, weight=50, new_template=True), st.PROGRESSING,
                 "New revision detected! Restarting analysis for podinfo.test",
                 id="template changed mid-analysis"),
    pytest.param(at(st.PROGRESSING, weight=50), st.PROMOTING,
                 "Copying podinfo.test template spec to podinfo-primary.test",
                 id="max weight"),
    pytest.param(at(st.PROMOTING, weight=50), st.FINALISING,
                 "Routing all traffic to primary", id="promoting"),
    pytest.param(at(st.FINALISING), st.SUCCEEDED,
                 "Promotion completed! Scaling down podinfo.test", id="finalising"),
    pytest.param(at(st.PROGRESSING, weight=20, failed=2), st.FAILED,
                 "Canary failed! Scaling down podinfo.test", id="threshold reached"),
])
def test_one_interval_takes_one_transition(world: World, phase: str, event: str) -> None:
    world.step()
    assert world.status["phase"] == phase
    assert world.events[-1] == event


def test_a_failed_check_counts_and_moves_nothing() -> None:
    world = at(st.PROGRESSING, weight=20, failed=1)
    world.verdict = Verdict(passed=False)
    step = world.decide()
    assert step.status is not None and step.status["failedChecks"] == 2
    assert not step.actions


@pytest.mark.parametrize("phase", [st.INITIALIZED, st.SUCCEEDED, st.FAILED])
def test_an_idle_canary_with_an_unchanged_template_writes_nothing(phase: str) -> None:
    world = at(phase)
    step = advance(world.parsed, replace(world.observed()), now=world.now)
    assert step.status is None and not step.actions and not step.events
