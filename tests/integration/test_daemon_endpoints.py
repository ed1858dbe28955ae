"""What the daemon exports while it works: /metrics, /healthz, /readyz; and the canary
strategy without a traffic router."""

from __future__ import annotations

import copy
import re

import aiohttp

from shiftd.kube.resources import REPLICA_SET, ROLLOUT
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import replicas_by_image, running_daemon
from tests.integration.harness import Cluster, test_cluster


async def phase(cluster: Cluster, wanted: str, step: int | None = None) -> bool:
    status = (await cluster.rollout()).get("status") or {}
    return status.get("phase") == wanted and (step is None
                                               or status.get("currentStepIndex") == step)


async def test_metrics_health_and_readiness_are_served_while_reconciling() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster) as daemon:
        await cluster.apply_example("asm-host-split")
        await cluster.wait_for(lambda: phase(cluster, "Healthy"), what="Healthy")
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: phase(cluster, "Paused", 1), what="paused at 10%")
        base = f"http://127.0.0.1:{daemon.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200

            async def scraped() -> str | None:
                async with session.get(f"{base}/metrics") as response:
                    text = await response.text()
                wanted = (f'rollout_info{{name="istio-rollout",namespace="{cluster.namespace}",'
                          'phase="Paused",strategy="Canary"} 1.0')
                return text if wanted in text else None

            text = await cluster.wait_for(scraped, what="rollout_info for the paused rollout")
        weight = re.search(r'shiftd_rollout_canary_weight\{[^}]*name="istio-rollout"[^}]*\} (\S+)',
                           text)
        assert weight is not None and float(weight.group(1)) == 10.0
        patches = re.search(r'controller_clientset_k8s_request_total\{status_code="200",'
                            r'verb="patch"\} (\S+)', text)
        assert patches is not None and float(patches.group(1)) > 0
        for name in ("shiftd_build_info", "rollout_reconcile_bucket", "shiftd_event_queue_depth",
                     "shiftd_watch_restarts_total", "rollout_info_replicas_available"):
            assert name in text


async def test_basic_canary_without_traffic_routing_scales_by_weight() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet():
        created = await cluster.apply_example("imesh-host-split")
        rollout = next(obj for obj in created if obj["kind"] == "Rollout")
        spec = copy.deepcopy(rollout["spec"])
        spec["replicas"] = 4
        spec["strategy"] = {"canary": {"maxSurge": 1, "maxUnavailable": 0, "steps": [
            {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 10}}]}}
        rollout["spec"] = spec
        await cluster.client.replace(ROLLOUT, cluster.namespace, "imesh-rollout", rollout)
        async with running_daemon(cluster, clock=clock):
            await cluster.wait_for(lambda: phase(cluster, "Healthy"), what="Healthy")
            await cluster.set_image("imesh-rollout", "nginx:1.15.5")
            await cluster.wait_for(lambda: phase(cluster, "Paused", 1), what="paused at 25%")
            assert replicas_by_image(await cluster.replica_sets()) == {"nginx:1.15.4": 3,
                                                                       "nginx:1.15.5": 1}
            await cluster.promote()
            await cluster.wait_for(lambda: phase(cluster, "Paused", 3), what="paused at 50%")
            assert replicas_by_image(await cluster.replica_sets()) == {"nginx:1.15.4": 2,
                                                                       "nginx:1.15.5": 2}
            clock.advance(10)
            await cluster.wait_for(lambda: phase(cluster, "Healthy", 4), what="promoted")
            assert replicas_by_image(await cluster.replica_sets()) == {"nginx:1.15.4": 0,
                                                                       "nginx:1.15.5": 4}


async def test_an_existing_replicaset_with_the_same_template_is_adopted() -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        documents = await cluster.apply_example("asm-host-split")
        rollout = next(obj for obj in documents if obj["kind"] == "Rollout")
        await cluster.client.delete(ROLLOUT, cluster.namespace, "istio-rollout")
        template = copy.deepcopy(rollout["spec"]["template"])
        template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "handmade"
        selector = {"matchLabels": {**rollout["spec"]["selector"]["matchLabels"],
                                    POD_TEMPLATE_HASH_LABEL: "handmade"}}
        await cluster.client.create(REPLICA_SET, cluster.namespace, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "istio-rollout-handmade",
                         "labels": {**template["metadata"]["labels"]}},
            "spec": {"replicas": 1, "selector": selector, "template": template}})
        fresh = {key: rollout[key] for key in ("apiVersion", "kind", "spec")}
        fresh["metadata"] = {"name": "istio-rollout", "namespace": cluster.namespace}
        await cluster.client.create(ROLLOUT, cluster.namespace, fresh)
        async with running_daemon(cluster):
            await cluster.wait_for(lambda: phase(cluster, "Healthy"), what="Healthy")
            replica_sets = await cluster.replica_sets()
            assert [rs["metadata"]["name"] for rs in replica_sets] == ["istio-rollout-handmade"]
            owner = replica_sets[0]["metadata"]["ownerReferences"][0]
            assert owner["kind"] == "Rollout" and owner["controller"] is True
            assert (await cluster.rollout())["status"]["stableRS"] == "handmade"
