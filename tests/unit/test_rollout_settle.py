"""When a Rollout reconcile may drop the wake-ups that came while it ran (``Outcome.settled``):
only when the Rollout is still there and nothing but its own writes changed its inputs, and
never after it scaled the Deployment its workloadRef names (whose new generation the next
plan records in ``status.workloadObservedGeneration``)."""

from __future__ import annotations

from typing import Any, cast

from shiftd.controllers.rollout import RolloutController, entry
from shiftd.decide.rollout.actions import Plan
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import DEPLOYMENT, ROLLOUT
from shiftd.model.argo.rollout import RolloutDefaults
from shiftd.runtime.caches import Caches
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.keys import ObjectKey, key_of
from shiftd.runtime.telemetry import Telemetry
from shiftd.traffic.registry import TrafficRouters

PLAN = Plan(actions=(), events=(), requeue_at=None, status={})


def rollout(version: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web",
                         "resourceVersion": version, "generation": 1}, "spec": {}}


def controller_and_caches(woken: list[ObjectKey] | None = None
                          ) -> tuple[RolloutController, Caches]:
    client = cast(KubeClient, object())  # never called: nothing here is read or written
    caches = Caches(client, namespaces=None,
                    enqueue=lambda key: None if woken is None else woken.append(key))
    controller = RolloutController(
        client=client, caches=caches, routers=TrafficRouters(()), writes=cast(Any, None),
        clock=ManualClock(), telemetry=Telemetry(), instance_id=None,
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


def deployment(version: str, generation: int, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-deploy",
                         "resourceVersion": version, "generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.25"}]}}}}


def referencing_rollout() -> dict[str, Any]:
    obj = rollout("10")
    obj["spec"] = {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                   "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "name": "web", "scaleDown": "onsuccess"},
                   "strategy": {"canary": {"steps": []}}}
    return obj


class ScalesTheDeployment:
    """Rollout writes that scale the Deployment down, whatever the plan says, answering
    (and caching) its next generation as the real writes do."""

    def __init__(self, caches: Caches) -> None:
        self._caches = caches

    async def apply(self, obj: Any, rollout: Any, plan: Plan) -> list[Any]:
        scaled = deployment("21", generation=2, replicas=0)
        self._caches.remember(DEPLOYMENT, scaled, notify=True)
        return [(DEPLOYMENT, scaled)]


async def test_a_reconcile_that_scaled_its_workload_is_not_settled_and_wakes_the_rollout(
) -> None:
    woken: list[ObjectKey] = []
    controller, caches = controller_and_caches(woken=woken)
    controller._writes = cast(Any, ScalesTheDeployment(caches))
    caches.remember(DEPLOYMENT, deployment("20", generation=1, replicas=1))
    caches.remember(ROLLOUT, referencing_rollout())
    key = key_of("Rollout", referencing_rollout())

    outcome = await controller.reconcile(key)

    assert caches.references(key) == ((DEPLOYMENT, "shop", "web"),)
    assert not outcome.settled  # the Deployment's generation 2 is still to be recorded
    assert key in woken  # the write woke the Rollout that references the Deployment
