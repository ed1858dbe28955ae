"""A write conflict in the middle of a Canary's step: the controller decides the step again
from fresh objects, but a webhook (or metric) it has already asked for that same step is not
asked twice (a pre-rollout acceptance test or a load test is not started again)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

from shiftd.controllers.canary import CanaryController
from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import CanaryEvent, Step
from shiftd.decide.flagger.observed import Verdict
from shiftd.kube.errors import Conflict
from shiftd.kube.resources import CANARY, DEPLOYMENT, ResourceKind
from shiftd.model.flagger.canary import Canary
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.flagger_telemetry import FlaggerMetrics
from shiftd.runtime.keys import ObjectKey
from tests.unit.test_flagger_machine import MINUTE, World

Obj = dict[str, Any]


class WorldCaches:
    """The caches as the controller reads them, over a ``World``."""

    def __init__(self, world: World) -> None:
        self.world = world

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Obj | None:
        if kind == CANARY:
            return self.world.canary
        if kind == DEPLOYMENT and name == "podinfo":
            return self.world.target
        return self.world.objects.get((kind.kind, name))

    def set_references(self, key: ObjectKey, refs: Any) -> None:
        pass

    def listed(self, kind: ResourceKind) -> bool:
        return True

    def served(self, kind: ResourceKind) -> bool:
        return True


class ConflictingWrites:
    """Applies steps to the world, the first ``conflicts`` of them refused with a 409."""

    def __init__(self, world: World, conflicts: int) -> None:
        self.world, self.conflicts = world, conflicts

    async def apply(self, obj: Obj, canary: Canary, step: Step) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict(409, "Conflict", "the object has been modified")
        self.world.apply(step)


class CountingChecks:
    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    async def run(self, canary: Canary, which: str) -> Verdict:
        self.asked[which] += 1
        return Verdict(passed=True)

    async def providers_available(self, canary: Canary) -> CanaryEvent:
        return CanaryEvent("all the metrics providers are available!")

    async def post_rollout(self, canary: Canary, phase: str) -> tuple[CanaryEvent, ...]:
        return ()

    async def notify(self, canary: Canary, events: Any, *, timestamp_ms: int) -> None:
        pass


def controller(world: World, *, conflicts: int) -> tuple[CanaryController, CountingChecks]:
    checks = CountingChecks()
    made = CanaryController(caches=WorldCaches(world),  # type: ignore[arg-type]
                            writes=ConflictingWrites(world, conflicts),  # type: ignore[arg-type]
                            checks=checks,  # type: ignore[arg-type]
                            clock=ManualClock(world.now),
                            metrics=FlaggerMetrics(CollectorRegistry()), workers=1)
    return made, checks


def at_pre_rollout() -> World:
    """A world whose next interval runs the pre-rollout hooks."""
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()  # New revision detected: the canary scaled up
    world.now += MINUTE
    return world


KEY = ObjectKey(CANARY.kind, "test", "podinfo")


async def test_a_conflict_after_the_pre_rollout_hooks_does_not_call_them_again() -> None:
    world = at_pre_rollout()
    daemon, checks = controller(world, conflicts=1)
    first = await daemon.reconcile(KEY)
    assert first.failed and first.retry_now
    await daemon.reconcile(KEY)
    assert checks.asked == Counter({"pre-rollout": 1})
    assert world.status["phase"] == st.PROGRESSING and world.status["canaryWeight"] == 10


async def test_a_step_decided_again_after_the_canary_changed_asks_again() -> None:
    world = at_pre_rollout()
    daemon, checks = controller(world, conflicts=1)
    await daemon.reconcile(KEY)
    world.status["failedChecks"] = 1  # the conflict was the Canary's status moving on
    await daemon.reconcile(KEY)
    assert checks.asked == Counter({"pre-rollout": 2})
