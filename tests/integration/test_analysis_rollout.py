"""Rollouts and their analysis templates on the API: references, recovery, ownership."""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import ANALYSIS_TEMPLATE
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, example_documents, test_cluster

Obj = dict[str, Any]


async def phase(cluster: Cluster) -> str:
    return str(((await cluster.rollout()).get("status") or {}).get("phase", ""))


async def test_a_missing_template_is_invalid_spec_until_it_is_created() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster):
        created = await cluster.apply_example("asm-host-split", exclude_analysis=False)
        template = next(d for d in created if d["kind"] == "AnalysisTemplate")
        await cluster.client.delete(ANALYSIS_TEMPLATE, cluster.namespace,
                                    template["metadata"]["name"])

        async def degraded() -> Obj | None:
            status = (await cluster.rollout()).get("status") or {}
            message = str(status.get("message", ""))
            return status if "AnalysisTemplate 'istio-success-rate' not found" in message \
                else None

        status = await cluster.wait_for(degraded, what="InvalidSpec for the missing template")
        assert status["phase"] == "Degraded"
        fresh = next(d for d in example_documents("asm-host-split")
                     if d["kind"] == "AnalysisTemplate")
        fresh["metadata"]["namespace"] = cluster.namespace
        await cluster.client.create(ANALYSIS_TEMPLATE, cluster.namespace, fresh)

        async def healthy() -> bool:
            return await phase(cluster) == "Healthy"

        await cluster.wait_for(healthy, what="recovered as soon as the template exists")
