"""When a Rollout reconcile may drop the wake-ups that came while it ran (``Outcome.settled``):
only when the Rollout is still there and nothing but its own writes changed its inputs."""

from __future__ import annotations

from typing import Any, cast

from shiftd.controllers.rollout import RolloutController, entry
from shiftd.decide.rollout.actions import Plan
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import ROLLOUT
from shiftd.model.argo.rollout import RolloutDefaults
from shiftd.runtime.caches import Caches
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.keys import key_of
from shiftd.runtime.telemetry import Telemetry
from shiftd.traffic.registry import TrafficRouters

PLAN = Plan(actions=(), events=(), requeue_at=None, status={})


def rollout(version: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web",
                         "resourceVersion": version, "generation": 1}, "spec": {}}


def controller_and_caches() -> tuple[RolloutController, Caches]:
    client = cast(KubeClient, object())  # never called: nothing here is read or written
    caches = Caches(client, namespaces=None, enqueue=lambda key: None)
    controller = RolloutController(
        client=client, caches=caches, routers=TrafficRouters(()), writes=cast(Any, None),
        clock=ManualClock(), telemetry=cast(Telemetry, None), instance_id=None,
        defaults=RolloutDefaults(), workers=1)
    controller.register(caches)
    return controller, caches


async def test_settled_only_while_the_rollout_is_cached_and_only_its_own_writes_moved() -> None:
    controller, caches = controller_and_caches()
    caches.remember(ROLLOUT, rollout("10"))
    key = key_of("Rollout", rollout("10"))
    before = set(controller.fingerprint(key, rollout("10")))
    assert controller._settle(key, PLAN, before=before, ours=set())

    caches.remember(ROLLOUT, rollout("11"))  # its own status write
    assert controller._settle(key, PLAN, before=before, ours={entry(ROLLOUT, rollout("11"))})
    caches.remember(ROLLOUT, rollout("12"))  # somebody else's
    assert not controller._settle(key, PLAN, before=before,
                                  ours={entry(ROLLOUT, rollout("11"))})

    caches.forget(ROLLOUT, "shop", "web")  # deleted while it was reconciled
    assert not controller._settle(key, PLAN, before=before, ours=set())
