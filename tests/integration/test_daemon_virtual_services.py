"""VirtualService shapes beyond one http route, on the API (emulator or real).

tls and tcp routes (selected by port and SNI hosts), several VirtualServices in one Rollout,
and a VirtualService in another namespace (``name.namespace``, that namespace among the
watched ones): weights at a step, then promotion. A change to the VirtualService in the other
namespace wakes the Rollout (the reference index spans namespaces), so a weight changed there
by hand is put back.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from shiftd.kube.errors import NotFound
from shiftd.kube.resources import NAMESPACE, ROLLOUT, SERVICE, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, example_documents, test_cluster

Obj = dict[str, Any]
STEPS = [{"setWeight": 20}, {"pause": {}}]
NO_RESYNC = {"resyncPeriod": 3600}  # only watch events wake the Rollout during a test


def destinations(canary: int) -> list[Obj]:
    return [{"destination": {"host": "stable-svc"}, "weight": 100 - canary},
            {"destination": {"host": "canary-svc"}, "weight": canary}]


def virtual_service(name: str, **spec: Any) -> Obj:
    return {"apiVersion": f"{VIRTUAL_SERVICE.group}/{VIRTUAL_SERVICE.version}",
            "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": ["imesh-rollout"], **spec}}


def http_vs(name: str) -> Obj:
    return virtual_service(name, http=[{"name": "primary", "route": destinations(0)}])


def by_host(entries: list[Obj]) -> dict[str, int]:
    return {e["destination"]["host"]: int(e.get("weight") or 0) for e in entries}


async def seed(cluster: Cluster, *, virtual_services: list[Obj], vs_refs: list[Obj]) -> None:
    """Seed 001's Rollout and Services, its VirtualService replaced by ``virtual_services``."""
    for source in example_documents("imesh-host-split"):
        if source["kind"] not in ("Rollout", "Service"):
            continue
        obj = copy.deepcopy(source)
        obj["metadata"]["namespace"] = cluster.namespace
        if obj["kind"] == "Rollout":
            obj["spec"]["minReadySeconds"] = 0
            obj["spec"]["strategy"]["canary"]["steps"] = STEPS
            obj["spec"]["strategy"]["canary"]["trafficRouting"] = {
                "istio": {"virtualServices": vs_refs}}
            await cluster.client.create(ROLLOUT, cluster.namespace, obj)
        else:
            await cluster.client.create(SERVICE, cluster.namespace, obj)
    for vs in virtual_services:
        namespace = vs["metadata"].pop("namespace", cluster.namespace)
        await cluster.client.create(VIRTUAL_SERVICE, namespace, vs)


async def at(cluster: Cluster, phase: str, **fields: Any) -> Obj | None:
    status = (await cluster.rollout("imesh-rollout")).get("status") or {}
    if status.get("phase") != phase or any(status.get(k) != v for k, v in fields.items()):
        return None
    return status


async def paused_at_twenty(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
    await cluster.set_image("imesh-rollout", "nginx:1.15.5")
    await cluster.wait_for(lambda: at(cluster, "Paused", currentStepIndex=1), what="at 20%")


async def promoted(cluster: Cluster) -> None:
    await cluster.promote("imesh-rollout")
    await cluster.wait_for(lambda: at(cluster, "Healthy", currentStepIndex=2), what="promoted")


async def test_tls_and_tcp_routes_are_weighted_at_each_step_and_at_promotion() -> None:
    vs = virtual_service(
        "l4-vsvc",
        tls=[{"match": [{"port": 443, "sniHosts": ["imesh.example.com"]}],
              "route": destinations(0)},
             {"match": [{"port": 443, "sniHosts": ["other.example.com"]}],
              "route": [{"destination": {"host": "other-svc"}, "weight": 100}]}],
        tcp=[{"match": [{"port": 3306}], "route": destinations(0)}])
    ref = {"name": "l4-vsvc", "tlsRoutes": [{"port": 443, "sniHosts": ["imesh.example.com"]}],
           "tcpRoutes": [{"port": 3306}]}

    async def routes() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        spec = (await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "l4-vsvc"))["spec"]
        return (by_host(spec["tls"][0]["route"]), by_host(spec["tcp"][0]["route"]),
                by_host(spec["tls"][1]["route"]))

    async with test_cluster() as cluster, cluster.kubelet():
        await seed(cluster, virtual_services=[vs], vs_refs=[ref])
        async with running_daemon(cluster, clock=ManualClock()):
            await paused_at_twenty(cluster)
            split = {"stable-svc": 80, "canary-svc": 20}
            assert await routes() == (split, split, {"other-svc": 100})
            await promoted(cluster)
            back = {"stable-svc": 100, "canary-svc": 0}

            async def all_back() -> bool:
                return await routes() == (back, back, {"other-svc": 100})

            await cluster.wait_for(all_back, what="tls and tcp back on stable")


async def test_several_virtual_services_move_together() -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await seed(cluster, virtual_services=[http_vs("vs-a"), http_vs("vs-b")],
                   vs_refs=[{"name": "vs-a", "routes": ["primary"]},
                            {"name": "vs-b", "routes": ["primary"]}])

        async def weights() -> list[dict[str, int]]:
            return [by_host((await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, name))
                            ["spec"]["http"][0]["route"]) for name in ("vs-a", "vs-b")]

        async with running_daemon(cluster, clock=ManualClock()):
            await paused_at_twenty(cluster)
            assert await weights() == [{"stable-svc": 80, "canary-svc": 20}] * 2
            await promoted(cluster)

            async def both_back() -> bool:
                return await weights() == [{"stable-svc": 100, "canary-svc": 0}] * 2

            await cluster.wait_for(both_back, what="both VirtualServices back on stable")


@asynccontextmanager
async def other_namespace(cluster: Cluster) -> AsyncIterator[str]:
    name = f"{cluster.namespace}-mesh"
    await cluster.client.create(NAMESPACE, None, {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with suppress(NotFound):
            await cluster.client.delete(NAMESPACE, None, name, propagation_policy="Background")


async def test_a_virtual_service_in_another_namespace_is_weighted_and_watched() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), \
            other_namespace(cluster) as mesh:
        vs = http_vs("shared-vsvc")
        vs["metadata"]["namespace"] = mesh
        await seed(cluster, virtual_services=[vs],
                   vs_refs=[{"name": f"shared-vsvc.{mesh}", "routes": ["primary"]}])

        async def weights() -> dict[str, int]:
            found = await cluster.client.get(VIRTUAL_SERVICE, mesh, "shared-vsvc")
            return by_host(found["spec"]["http"][0]["route"])

        async with running_daemon(cluster, clock=ManualClock(),
                                  namespaces=[cluster.namespace, mesh], **NO_RESYNC):
            await paused_at_twenty(cluster)
            assert await weights() == {"stable-svc": 80, "canary-svc": 20}

            edited = await cluster.client.get(VIRTUAL_SERVICE, mesh, "shared-vsvc")
            edited["spec"]["http"][0]["route"] = destinations(0)
            await cluster.client.replace(VIRTUAL_SERVICE, mesh, "shared-vsvc", edited)

            async def put_back() -> bool:
                return await weights() == {"stable-svc": 80, "canary-svc": 20}

            await cluster.wait_for(put_back, what="the other namespace's weights put back")
            await promoted(cluster)

            async def back() -> bool:
                return await weights() == {"stable-svc": 100, "canary-svc": 0}

            await cluster.wait_for(back, what="back on stable")
