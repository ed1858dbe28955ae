"""Seed 000 with its VirtualService and Gateway in a second cluster, as Alibaba ASM keeps them.

The main cluster has no Istio CRDs at all; the daemon is given the mesh cluster's kubeconfig
(``mesh.kubeconfig``) and must read, watch and write the VirtualService there, everything else
on the main one. Then each cluster is stopped and brought back (its data kept) mid-rollout:
only what depends on the missing one waits, /readyz names it, and nothing is written twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio.to_thread
import pytest

from shiftd.assembly import Daemon
from shiftd.cli import ctl
from shiftd.kube.resources import DESTINATION_RULE, EVENT, ROLLOUT, VIRTUAL_SERVICE
from shiftd.kube.servers import ApiServer, ApiServers
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import basic_rollout, running_daemon, weights
from tests.integration.harness import KUBECONFIG_ENV, Cluster, test_cluster
from tests.integration.mesh_support import (
    MeshCluster,
    main_cluster_crds,
    mesh_cluster,
    needs_mesh_cluster,
)
from tests.support.invariants import InvariantMonitor

pytestmark = needs_mesh_cluster

Obj = dict[str, Any]
VS_NAME = "istio-rollout-vsvc"
STABLE, CANARY = "istio-rollout-stable", "istio-rollout-canary"
# decided before the test opens its task groups, which would wrap a skip raised inside them
needs_emulators = pytest.mark.skipif(
    bool(os.environ.get(KUBECONFIG_ENV)),
    reason="stopping and restarting an API server needs the emulator")


@asynccontextmanager
async def seed_000_across_two_clusters(clock: ManualClock) -> AsyncIterator[
        tuple[Cluster, MeshCluster, Daemon]]:
    """Seed 000 applied, Healthy: its Rollout and Services on the main cluster, its
    VirtualService and Gateway on the mesh one, the daemon running against both. An invariant
    monitor watches both clusters as one (the mesh's weights against the main's pods)."""
    async with test_cluster(crds=main_cluster_crds()) as cluster, mesh_cluster(cluster) as mesh:
        both = ApiServers(ApiServer("main", cluster.client),
                          [(ApiServer("mesh", mesh.client), (VIRTUAL_SERVICE, DESTINATION_RULE))])
        async with InvariantMonitor.watching(both, cluster.namespace), cluster.kubelet(), \
                running_daemon(cluster, clock=clock,
                               mesh={"kubeconfig": str(mesh.daemon_kubeconfig_path)}) as daemon:
            await mesh.apply_istio("asm-host-split")
            await cluster.apply_example("asm-host-split")
            await cluster.wait_for(lambda: phase_is(cluster, "Healthy"), what="Healthy")
            yield cluster, mesh, daemon


async def phase_is(cluster: Cluster, phase: str, name: str | None = None,
                   **fields: Any) -> Obj | None:
    rollout = await cluster.rollout(name)
    status = rollout.get("status") or {}
    if status.get("phase") != phase or any(status.get(k) != v for k, v in fields.items()):
        return None
    return rollout


async def canary_weight_is(mesh: MeshCluster, weight: int) -> bool:
    return weights(await mesh.vs(VS_NAME)) == {STABLE: 100 - weight, CANARY: weight}


async def readyz(daemon: Daemon) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{daemon.port}/readyz") as response:
        return response.status, await response.text()


async def readyz_says(daemon: Daemon, status: int, text: str) -> bool:
    return await readyz(daemon) == (status, text + "\n")


def weight_writes(mesh: MeshCluster) -> int:
    """Successful PATCHes of the VirtualService on the mesh emulator."""
    assert mesh.api is not None
    return sum(1 for r in mesh.api.request_log if r.method == "PATCH" and r.status == 200
               and r.path.endswith(f"/virtualservices/{VS_NAME}"))


async def shiftctl_actual_weight(cluster: Cluster, mesh: MeshCluster,
                                 capsys: pytest.CaptureFixture[str]) -> str:
    """``shiftctl get rollout -o json`` with the mesh cluster's kubeconfig: its actualWeight."""
    argv = ["--kubeconfig", str(cluster.kubeconfig_path), "-n", cluster.namespace,
            "--mesh-kubeconfig", str(mesh.kubeconfig_path),
            "get", "rollout", "istio-rollout", "-o", "json"]
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(ctl.main, argv) == 0
    return str(json.loads(capsys.readouterr().out)["actualWeight"])


async def test_seed_000_moves_weights_on_the_mesh_cluster_and_everything_else_on_the_main(
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock()
    async with seed_000_across_two_clusters(clock) as (cluster, mesh, daemon):
        assert {obj["kind"] for obj in cluster.skipped} == {"VirtualService", "Gateway"}
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=1),
                               what="paused at step 1")
        assert await canary_weight_is(mesh, 10)
        assert await shiftctl_actual_weight(cluster, mesh, capsys) == "10"
        await cluster.promote()
        for index, weight in enumerate((20, 30, 40, 50, 60, 70, 80, 90)):
            step = 3 + 2 * index
            await cluster.wait_for(lambda step=step: phase_is(cluster, "Paused",
                                                              currentStepIndex=step),
                                   what=f"paused at step {step}")
            assert await canary_weight_is(mesh, weight)
            clock.advance(20)
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy", currentStepIndex=18),
                               what="promoted")
        assert await canary_weight_is(mesh, 0)
        assert (await readyz(daemon))[0] == 200
        if cluster.api is not None and mesh.api is not None:
            assert not [r.path for r in cluster.api.request_log if "networking.istio.io" in r.path]
            assert {r.path for r in mesh.api.request_log if r.method == "PATCH"} == {
                f"/apis/networking.istio.io/v1beta1/namespaces/{cluster.namespace}"
                f"/virtualservices/{VS_NAME}"}
            assert weight_writes(mesh) == 10  # 10, 20, ... 90, then 0: each once
            # no Istio on the emulated main cluster at all (a real one may have it installed)
            assert not await cluster.client.serves(VIRTUAL_SERVICE)


@needs_emulators
async def test_each_cluster_stopped_mid_rollout_delays_only_what_needs_it() -> None:
    clock = ManualClock()
    async with seed_000_across_two_clusters(clock) as (cluster, mesh, daemon):
        if cluster.api is None or mesh.api is None:
            pytest.skip("stopping and restarting an API server needs the emulator")
        await cluster.client.create(ROLLOUT, cluster.namespace, basic_rollout(
            "no-mesh", steps=[{"setWeight": 50}, {"pause": {}}]))
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy", "no-mesh"),
                               what="the Rollout without traffic routing Healthy")
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=1),
                               what="paused at step 1")
        await cluster.promote()
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=3),
                               what="paused at step 3")

        await mesh.api.stop()
        clock.advance(20)  # step 4 (setWeight: 30) is due, and cannot be written
        await cluster.wait_for(lambda: readyz_says(
            daemon, 503, "not ready: the mesh API server is unreachable"),
                               what="/readyz naming the mesh cluster")
        await cluster.set_image("no-mesh", "argoproj/rollouts-demo:green")
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", "no-mesh",
                                                currentStepIndex=1),
                               what="the Rollout without traffic routing progressing")
        assert (await cluster.rollout())["status"]["currentStepIndex"] == 3
        await mesh.api.start()
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=5),
                               timeout=30, what="paused at step 5 once the mesh is back")
        assert await canary_weight_is(mesh, 30)

        await cluster.api.stop()
        await cluster.wait_for(lambda: readyz_says(
            daemon, 503, "not ready: the main API server is unreachable"),
                               what="/readyz naming the main cluster")
        clock.advance(20)  # step 6 (setWeight: 40) is due while the main cluster is down
        await cluster.api.start()
        for weight, step in ((40, 7), (50, 9), (60, 11), (70, 13), (80, 15), (90, 17)):
            await cluster.wait_for(lambda step=step: phase_is(cluster, "Paused",
                                                              currentStepIndex=step),
                                   timeout=30, what=f"paused at step {step}")
            assert await canary_weight_is(mesh, weight)
            clock.advance(20)
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy", currentStepIndex=18),
                               what="promoted")
        assert await canary_weight_is(mesh, 0)
        await cluster.wait_for(lambda: readyz_says(daemon, 200, "ready: leader"),
                               what="ready again")
        assert weight_writes(mesh) == 10  # no weight written twice across the restarts


@needs_emulators
async def test_a_mesh_cluster_down_at_start_makes_its_rollouts_wait_not_invalid() -> None:
    async with test_cluster(crds=main_cluster_crds()) as cluster, mesh_cluster(cluster) as mesh:
        if cluster.api is None or mesh.api is None:
            pytest.skip("stopping and restarting an API server needs the emulator")
        await mesh.apply_istio("asm-host-split")
        await cluster.apply_example("asm-host-split")
        await mesh.api.stop()
        async with cluster.kubelet(), running_daemon(
                cluster, mesh={"kubeconfig": str(mesh.daemon_kubeconfig_path)}) as daemon:
            await cluster.wait_for(lambda: readyz_says(
                daemon, 503, "not ready: the mesh API server is unreachable"),
                what="/readyz naming the mesh cluster")
            await cluster.wait_for(lambda: daemon.telemetry.registry.get_sample_value(
                "rollout_reconcile_error_total",
                {"namespace": cluster.namespace, "name": "istio-rollout"}),
                what="a reconcile that found the VirtualService not listed yet")
            assert not (await cluster.rollout()).get("status", {}).get("conditions")
            await mesh.api.start()
            await cluster.wait_for(lambda: phase_is(cluster, "Healthy"), timeout=30,
                                   what="Healthy once the mesh cluster answers")
            assert await canary_weight_is(mesh, 0)
            await cluster.wait_for(lambda: daemon.quiet, what="every Event written")
            events, _ = await cluster.client.list(EVENT, cluster.namespace)
            assert "InvalidSpec" not in {event["reason"] for event in events}
