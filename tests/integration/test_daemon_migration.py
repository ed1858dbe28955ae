"""Migrating a Service that selects a running workload's pods (issue 8, finding 1): shiftd
keeps the Services on the running pods until the Rollout's ReplicaSet is fully available, so
no traffic ever reaches pods that are not ready. The invariant monitor watches every state."""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import DEPLOYMENT, POD, ROLLOUT
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon, selector_hash
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]


async def running_pods(cluster: Cluster, *, labels: dict[str, str], count: int) -> None:
    """Pods of the workload the user runs today (as a Deployment's), Ready."""
    for index in range(count):
        pod = await cluster.client.create(POD, cluster.namespace, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"legacy-{index}", "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]}})
        await cluster.client.patch(POD, cluster.namespace, pod["metadata"]["name"], {
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}]}},
            patch_type="merge", subresource="status")


async def test_migrating_a_service_keeps_it_on_running_pods_until_the_rollout_is_ready(
) -> None:
    async with test_cluster() as cluster:
        await running_pods(cluster, labels={"app": "istio-rollout"}, count=2)
        async with cluster.kubelet() as kubelet, \
                running_daemon(cluster, clock=ManualClock()) as daemon:
            kubelet.hold(cluster.namespace, "*")
            await cluster.apply_example("asm-host-split")

            async def created() -> list[Obj]:
                return await cluster.replica_sets()

            (replica_set,) = await cluster.wait_for(created, what="the ReplicaSet")
            await cluster.wait_for(lambda: daemon.quiet, what="the daemon idle")
            assert cluster.monitor.violations == []
            for name in ("istio-rollout-stable", "istio-rollout-canary"):
                assert selector_hash(await cluster.service(name)) is None

            kubelet.release(cluster.namespace, "*")

            async def healthy() -> Obj | None:
                rollout = await cluster.client.get(ROLLOUT, cluster.namespace, "istio-rollout")
                status = rollout.get("status") or {}
                return rollout if status.get("phase") == "Healthy" else None

            await cluster.wait_for(healthy, what="Healthy")
            pod_hash = replica_set["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
            assert await cluster.wait_for(
                lambda: _selects(cluster, "istio-rollout-stable", pod_hash),
                what="the stable Service switched once the ReplicaSet is available")


async def test_migrating_a_deployment_through_workload_ref_keeps_its_pods_serving_until_ready(
) -> None:
    """Issue 9: the Rollout takes its template from the live Deployment (``scaleDown:
    progressively``); the Services keep selecting the Deployment's pods until the Rollout's
    are all available, and the Deployment is scaled down only as they become so."""
    async with test_cluster() as cluster:
        await running_pods(cluster, labels={"app": "istio-rollout"}, count=2)
        await cluster.apply_example("asm-host-split")
        rollout = await cluster.rollout()
        await cluster.client.create(DEPLOYMENT, cluster.namespace, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istio-rollout", "namespace": cluster.namespace},
            "spec": {"replicas": 2, "selector": rollout["spec"]["selector"],
                     "template": rollout["spec"]["template"]}})
        rollout["spec"].pop("template")
        rollout["spec"]["replicas"] = 2  # as the Deployment: progressively keeps 2 - available
        rollout["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "istio-rollout", "scaleDown": "progressively"}
        await cluster.client.replace(ROLLOUT, cluster.namespace, "istio-rollout", rollout)
        async with cluster.kubelet() as kubelet, \
                running_daemon(cluster, clock=ManualClock()) as daemon:
            kubelet.hold(cluster.namespace, "*")

            async def created() -> list[Obj]:
                return await cluster.replica_sets()

            (replica_set,) = await cluster.wait_for(created, what="the ReplicaSet")
            await cluster.wait_for(lambda: daemon.quiet, what="the daemon idle")
            assert cluster.monitor.violations == []
            for name in ("istio-rollout-stable", "istio-rollout-canary"):
                assert selector_hash(await cluster.service(name)) is None
            deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, "istio-rollout")
            assert deployment["spec"]["replicas"] == 2  # no Rollout pod available yet

            kubelet.release(cluster.namespace, "*")
            pod_hash = replica_set["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
            assert await cluster.wait_for(
                lambda: _selects(cluster, "istio-rollout-stable", pod_hash),
                what="the stable Service switched once the ReplicaSet is available")

            async def retired() -> bool:
                found = await cluster.client.get(DEPLOYMENT, cluster.namespace,
                                                 "istio-rollout")
                return bool(found["spec"]["replicas"] == 0)

            assert await cluster.wait_for(retired, what="the Deployment scaled down")
            assert cluster.monitor.violations == []


async def _selects(cluster: Cluster, service: str, pod_hash: str) -> bool:
    return selector_hash(await cluster.service(service)) == pod_hash
