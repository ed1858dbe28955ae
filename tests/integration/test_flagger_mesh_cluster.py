"""Seed 003's Canary with Istio on a separate mesh cluster (``mesh.kubeconfig``), as Flagger's
``-kubeconfig-service-mesh`` runs it on Alibaba ASM: the primary Deployment, the Services and
the Canary's status stay on the main cluster; the VirtualService and the DestinationRules are
created and moved on the mesh cluster, without owner references (they cannot cross clusters).
"""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import DEPLOYMENT, DESTINATION_RULE, SERVICE, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from shiftd.sim import flagger_crd_files, load_crd_documents
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import test_cluster
from tests.integration.mesh_support import main_cluster_crds, mesh_cluster, needs_mesh_cluster
from tests.integration.test_flagger_canary import (
    NEW_IMAGE,
    canary_status,
    install_unchecked,
    set_image,
    tick_until,
)
from tests.support.loadtester import loadtester

pytestmark = needs_mesh_cluster


def routed(vs: dict[str, Any]) -> dict[str, int]:
    return {r["destination"]["host"]: r.get("weight", 0) for r in vs["spec"]["http"][0]["route"]}


async def test_a_canarys_virtual_service_and_rules_are_made_and_moved_on_the_mesh_cluster(
) -> None:
    clock = ManualClock()
    crds = main_cluster_crds() + tuple(load_crd_documents(flagger_crd_files()))
    async with test_cluster(crds=crds) as cluster, mesh_cluster(cluster) as mesh, \
            cluster.deployments(), loadtester() as tester:
        await install_unchecked(cluster, tester)
        async with running_daemon(cluster, clock=clock,
                                  mesh={"kubeconfig": str(mesh.daemon_kubeconfig_path)}):
            async def initialized() -> bool:
                return (await canary_status(cluster)).get("phase") == "Initialized"

            await cluster.wait_for(initialized, what="the Canary Initialized")
            namespace = cluster.namespace
            made = [await mesh.vs("podinfo")] + [
                await mesh.client.get(DESTINATION_RULE, namespace, name)
                for name in ("podinfo-primary", "podinfo-canary")]
            assert [obj["metadata"].get("ownerReferences") for obj in made] == [None] * 3
            assert routed(made[0]) == {"podinfo-primary": 100, "podinfo-canary": 0}
            primary = await cluster.client.get(DEPLOYMENT, namespace, "podinfo-primary")
            assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
            await cluster.client.get(SERVICE, namespace, "podinfo-canary")
            await set_image(cluster, NEW_IMAGE)
            await tick_until(cluster, clock, "weight 10", lambda s: s.get("canaryWeight") == 10)
            assert routed(await mesh.vs("podinfo")) == {"podinfo-primary": 90,
                                                         "podinfo-canary": 10}
            if cluster.api is not None:  # emulated: no Istio on the main cluster at all
                assert not [r.path for r in cluster.api.request_log
                            if "networking.istio.io" in r.path]
                assert not await cluster.client.serves(VIRTUAL_SERVICE)
