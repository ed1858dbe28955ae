"""The watched namespaces change under a running daemon (what SIGHUP applies): a namespace
added is listed and its Rollouts reconciled; one removed is forgotten, and nothing in it is
written any more."""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import NAMESPACE, ROLLOUT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import basic_rollout, running_daemon
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]
STEPS: list[Obj] = [{"setWeight": 50}]


async def phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    rollout = await cluster.client.get(ROLLOUT, namespace, name)
    return (rollout.get("status") or {}).get("phase")


async def test_a_namespace_added_is_reconciled_and_one_removed_is_left_alone() -> None:
    async with test_cluster() as cluster:
        other = f"{cluster.namespace}-other"
        await cluster.client.create(NAMESPACE, None, {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
        await cluster.client.create(ROLLOUT, other, basic_rollout("elsewhere", steps=STEPS))
        async with cluster.kubelet(), running_daemon(cluster, clock=ManualClock()) as daemon:
            await cluster.client.create(ROLLOUT, cluster.namespace,
                                        basic_rollout("here", steps=STEPS))

            async def healthy(namespace: str, name: str) -> bool:
                return await phase(cluster, namespace, name) == "Healthy"

            await cluster.wait_for(lambda: healthy(cluster.namespace, "here"), what="here")
            assert await phase(cluster, other, "elsewhere") is None  # not watched

            await daemon.set_namespaces([cluster.namespace, other])

            async def reconciled() -> bool:  # (no kubelet there: it stays Progressing)
                return await phase(cluster, other, "elsewhere") is not None

            await cluster.wait_for(reconciled, what="the added namespace's Rollout reconciled")

            await daemon.set_namespaces([cluster.namespace])
            for namespace, name in ((other, "elsewhere"), (cluster.namespace, "here")):
                await cluster.client.patch(ROLLOUT, namespace, name,
                                           {"spec": {"paused": True}}, patch_type="merge")
            changed = await cluster.client.get(ROLLOUT, other, "elsewhere")

            async def here_paused() -> bool:  # the daemon has acted on the later change
                status = (await cluster.client.get(ROLLOUT, cluster.namespace, "here")).get(
                    "status") or {}
                return any(c.get("type") == "Paused" and c.get("status") == "True"
                           for c in status.get("conditions") or [])

            await cluster.wait_for(here_paused, what="the watched namespace's change acted on")
            await cluster.wait_for(lambda: daemon.quiet, what="the daemon idle")
            still = await cluster.client.get(ROLLOUT, other, "elsewhere")
            assert still["metadata"]["resourceVersion"] == changed["metadata"][
                "resourceVersion"]  # no status written: the namespace is no longer ours
