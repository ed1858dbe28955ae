"""Managed routes and hand-made weight changes, on the API (emulator or real).

Seed 001's objects with header and mirror route steps: the routes appear above the user's
route in managedRoutes order at their steps, keep the weights of the weighted route, and are
gone after promotion and after an abort, leaving the user's route as written. A weight changed
by hand during a pause is put back on the VirtualService's watch event (the resync is an hour
away), with a TrafficWeightDrift Event, and the unrelated field changed in the same edit stays.
"""

from __future__ import annotations

import copy
from typing import Any

from shiftd.kube.resources import EVENT, ROLLOUT, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon, weights
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]

HEADER_STEP = {"setHeaderRoute": {"name": "header-route", "match": [
    {"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}}
MIRROR_STEP = {"setMirrorRoute": {"name": "mirror-route", "percentage": 35, "match": [
    {"method": {"exact": "GET"}}]}}
ROUTE_STEPS = [{"setWeight": 20}, MIRROR_STEP, HEADER_STEP, {"pause": {}},
               {"setWeight": 40}, {"pause": {}}]
NO_RESYNC = {"resyncPeriod": 3600}  # only watch events wake the Rollout during a test


async def seed(cluster: Cluster, *, steps: list[Obj], managed: list[str] | None = None) -> Obj:
    """Seed 001 (one http route, 'primary') with these steps; returns the VirtualService."""
    await cluster.apply_example("imesh-host-split")
    rollout = await cluster.rollout()
    canary: Obj = {"steps": steps}
    if managed is not None:
        canary["trafficRouting"] = {"managedRoutes": [{"name": name} for name in managed]}
    await cluster.client.patch(ROLLOUT, cluster.namespace, rollout["metadata"]["name"], {
        "spec": {"minReadySeconds": 0, "strategy": {"canary": canary}}}, patch_type="merge")
    return await cluster.vs()


async def at(cluster: Cluster, phase: str, **fields: Any) -> Obj | None:
    status = (await cluster.rollout()).get("status") or {}
    if status.get("phase") != phase or any(status.get(k) != v for k, v in fields.items()):
        return None
    return status


async def route_names(cluster: Cluster) -> list[str | None]:
    return [route.get("name") for route in (await cluster.vs())["spec"]["http"]]


async def paused_with_routes(cluster: Cluster) -> Obj:
    await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
    await cluster.set_image(None, "nginx:1.15.5")
    await cluster.wait_for(lambda: at(cluster, "Paused", currentStepIndex=3),
                           what="paused after the route steps")
    return await cluster.vs()


def user_route_as_written(vs: Obj, original: Obj, *, canary: int) -> bool:
    expected = copy.deepcopy(original["spec"]["http"][0])
    for entry in expected["route"]:
        entry["weight"] = canary if entry["destination"]["host"] == "canary-svc" \
            else 100 - canary
    return bool(vs["spec"]["http"] == [expected])


async def test_header_and_mirror_routes_sit_above_the_users_route_until_promotion() -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        original = await seed(cluster, steps=ROUTE_STEPS,
                              managed=["header-route", "mirror-route"])
        async with running_daemon(cluster, clock=ManualClock(), **NO_RESYNC):
            vs = await paused_with_routes(cluster)
            header, mirror, primary = vs["spec"]["http"]
            assert (header["name"], mirror["name"], primary["name"]) == (
                "header-route", "mirror-route", "primary")
            assert header["match"] == [{"headers": {"x-canary": {"exact": "yes"}}}]
            assert header["route"] == [{"destination": {"host": "canary-svc"}, "weight": 100}]
            assert mirror["mirror"] == {"host": "canary-svc"}
            assert mirror["mirrorPercentage"] == {"value": 35}
            assert weights(vs, 1) == weights(vs, 2) == {"stable-svc": 80, "canary-svc": 20}

            await cluster.promote()
            await cluster.wait_for(lambda: at(cluster, "Paused", currentStepIndex=5),
                                   what="paused at 40%")
            vs = await cluster.vs()
            assert await route_names(cluster) == ["header-route", "mirror-route", "primary"]
            assert weights(vs, 1) == weights(vs, 2) == {"stable-svc": 60, "canary-svc": 40}

            await cluster.promote()
            await cluster.wait_for(lambda: at(cluster, "Healthy", currentStepIndex=6),
                                   what="promoted")

            async def routes_gone() -> bool:
                return user_route_as_written(await cluster.vs(), original, canary=0)

            await cluster.wait_for(routes_gone, what="the managed routes removed")


async def test_an_abort_removes_the_managed_routes() -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        original = await seed(cluster, steps=ROUTE_STEPS,
                              managed=["header-route", "mirror-route"])
        async with running_daemon(cluster, clock=ManualClock(), **NO_RESYNC):
            await paused_with_routes(cluster)
            await cluster.abort()
            await cluster.wait_for(lambda: at(cluster, "Degraded"), what="aborted")

            async def routes_gone() -> bool:
                return user_route_as_written(await cluster.vs(), original, canary=0)

            await cluster.wait_for(routes_gone, what="the managed routes removed")


async def test_a_weight_changed_by_hand_is_put_back_and_the_rest_of_the_edit_stays() -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await seed(cluster, steps=[{"setWeight": 30}, {"pause": {}}])
        async with running_daemon(cluster, clock=ManualClock(), **NO_RESYNC) as daemon:
            await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
            await cluster.set_image(None, "nginx:1.15.5")
            await cluster.wait_for(lambda: at(cluster, "Paused", currentStepIndex=1),
                                   what="paused at 30%")
            vs = await cluster.vs()
            assert weights(vs) == {"stable-svc": 70, "canary-svc": 30}

            edited = copy.deepcopy(vs)
            primary = edited["spec"]["http"][0]
            for entry in primary["route"]:
                entry["weight"] = 0 if entry["destination"]["host"] == "canary-svc" else 100
            primary["timeout"] = "7s"  # an unrelated field, in the same edit
            namespace, name = cluster.namespace, vs["metadata"]["name"]
            await cluster.client.replace(VIRTUAL_SERVICE, namespace, name, edited)

            async def restored() -> Obj | None:
                current = await cluster.vs()
                return current if weights(current) == {"stable-svc": 70,
                                                       "canary-svc": 30} else None

            current = await cluster.wait_for(restored, what="the weights put back")
            assert current["spec"]["http"][0]["timeout"] == "7s"
            assert current["spec"]["gateways"] == vs["spec"]["gateways"]

            await cluster.wait_for(lambda: daemon.quiet, what="every Event written")
            events, _ = await cluster.client.list(EVENT, namespace)
            drift = [e for e in events if e["reason"] == "TrafficWeightDrift"]
            assert len(drift) == 1 and drift[0]["type"] == "Warning"
            assert drift[0]["involvedObject"]["kind"] == "Rollout"
            assert "VirtualService 'imesh-vsvc' HTTP route 'primary': canary 0, stable 100" \
                in drift[0]["message"]
