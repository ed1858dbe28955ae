"""Seed 003's Canary end to end with Flagger's other strategies: A/B testing (``iterations`` and
``match``) and ``stepWeights``; the VirtualService read back at each iteration or step, then
the promotion. No metrics or webhooks (every interval passes): the routes are the subject."""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import CANARY, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, flagger_crds, test_cluster
from tests.integration.test_flagger_canary import (
    NEW_IMAGE,
    canary_events,
    canary_status,
    image_of,
    install,
    replicas_of,
    set_image,
    tick_until,
)
from tests.support.loadtester import loadtester

Obj = dict[str, Any]
PRIMARY, CANARY_HOST = {"host": "podinfo-primary"}, {"host": "podinfo-canary"}
AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]


async def with_analysis(cluster: Cluster, **analysis: Any) -> None:
    """Seed 003's Canary with its analysis steps replaced and no checks."""
    async with loadtester() as tester:
        await install(cluster, tester)
    canary = await cluster.client.get(CANARY, cluster.namespace, "podinfo")
    kept = {key: canary["spec"]["analysis"][key] for key in ("interval", "threshold")}
    canary["spec"]["analysis"] = {**kept, "metrics": [], "webhooks": [], **analysis}
    await cluster.client.replace(CANARY, cluster.namespace, "podinfo", canary)


async def http_routes(cluster: Cluster) -> list[Obj]:
    vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "podinfo")
    return [{key: route[key] for key in ("match", "route", "mirror") if key in route}
            for route in vs["spec"]["http"]]


def weighted(primary: int, canary: int) -> list[Obj]:
    return [{"destination": PRIMARY, "weight": primary},
            {"destination": CANARY_HOST, "weight": canary}]


async def started(cluster: Cluster, clock: ManualClock) -> None:
    await cluster.wait_for(lambda: _initialized(cluster), what="the Canary Initialized")
    await set_image(cluster, NEW_IMAGE)
    await tick_until(cluster, clock, "Progressing", lambda s: s.get("phase") == "Progressing")


async def _initialized(cluster: Cluster) -> bool:
    return (await canary_status(cluster)).get("phase") == "Initialized"


async def promoted(cluster: Cluster, clock: ManualClock) -> None:
    await tick_until(cluster, clock, "Succeeded", lambda s: s.get("phase") == "Succeeded")
    assert await image_of(cluster, "podinfo-primary") == NEW_IMAGE
    assert await replicas_of(cluster, "podinfo") == 0
    assert f"Promotion completed! Scaling down podinfo.{cluster.namespace}" in \
        await canary_events(cluster)


async def test_an_ab_test_routes_matching_requests_to_the_canary_each_iteration_then_promotes(
        ) -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments():
        await with_analysis(cluster, iterations=3, match=AB_MATCH)
        async with running_daemon(cluster, clock=clock):
            await started(cluster, clock)
            assert await http_routes(cluster) == [
                {"match": AB_MATCH, "route": weighted(100, 0)},
                {"route": [{"destination": PRIMARY, "weight": 100}]}]
            for iteration in (1, 2, 3):
                found = await tick_until(cluster, clock, f"iteration {iteration}",
                                         lambda s, i=iteration: s.get("iterations") == i)
                assert found["canaryWeight"] == 0  # Flagger's runAB leaves the status weight
                assert await http_routes(cluster) == [
                    {"match": AB_MATCH, "route": weighted(0, 100)},
                    # a lone destination: 100, so every route adds up to 100 (Flagger writes
                    # the primary's 0 here, which Istio ignores for a lone destination)
                    {"route": [{"destination": PRIMARY, "weight": 100}]}]
            await promoted(cluster, clock)
            assert await http_routes(cluster) == [
                {"match": AB_MATCH, "route": weighted(100, 0)},
                {"route": [{"destination": PRIMARY, "weight": 100}]}]
            path = f"podinfo.{cluster.namespace}"
            events = await canary_events(cluster)
            assert [e for e in events if e.startswith(f"Advance {path} canary iteration")] == [
                f"Advance {path} canary iteration {i}/3" for i in (1, 2, 3)]


async def test_step_weights_move_the_canary_through_each_listed_weight_then_promote() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments():
        await with_analysis(cluster, stepWeights=[5, 25, 60])
        async with running_daemon(cluster, clock=clock):
            await started(cluster, clock)
            for weight in (5, 25, 60):
                await tick_until(cluster, clock, f"weight {weight}",
                                 lambda s, w=weight: s.get("canaryWeight") == w)
                assert await http_routes(cluster) == [{"route": weighted(100 - weight, weight)}]
            await promoted(cluster, clock)
            assert await http_routes(cluster) == [{"route": weighted(100, 0)}]
            path = f"podinfo.{cluster.namespace}"
            events = await canary_events(cluster)
            assert [e for e in events if e.startswith(f"Advance {path} canary weight")] == [
                f"Advance {path} canary weight {w}" for w in (5, 25, 60)]
