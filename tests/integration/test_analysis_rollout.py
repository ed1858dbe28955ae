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


async def test_only_analysis_runs_of_our_rollouts_are_measured() -> None:
    from aiohttp import web  # noqa: PLC0415 - only this test serves HTTP

    from shiftd.kube.resources import ANALYSIS_RUN, ROLLOUT  # noqa: PLC0415
    from tests.support.prometheus import serve  # noqa: PLC0415

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ok", ok)
    async with test_cluster() as cluster, cluster.kubelet(), serve(app) as url:
        created = await cluster.apply_example("asm-host-split")
        ours = next(d for d in created if d["kind"] == "Rollout")
        theirs = {key: ours[key] for key in ("apiVersion", "kind", "spec")}
        theirs["metadata"] = {"name": "theirs", "namespace": cluster.namespace, "labels": {
            "argo-rollouts.argoproj.io/controller-instance": "argo"}}
        theirs = await cluster.client.create(ROLLOUT, cluster.namespace, theirs)

        def run(name: str, owner: Obj | None) -> Obj:
            metadata: Obj = {"name": name, "namespace": cluster.namespace}
            if owner is not None:
                metadata["ownerReferences"] = [{
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "controller": True,
                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
            return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                    "metadata": metadata, "spec": {"metrics": [{
                        "name": "ok", "successCondition": "result == true",
                        "provider": {"web": {"url": f"{url}/ok", "jsonPath": "{$.ok}"}}}]}}

        for name, owner in (("mine", ours), ("argos", theirs), ("orphan", None)):
            await cluster.client.create(ANALYSIS_RUN, cluster.namespace, run(name, owner))
        async with running_daemon(cluster):
            async def measured() -> bool:
                mine = await cluster.client.get(ANALYSIS_RUN, cluster.namespace, "mine")
                return (mine.get("status") or {}).get("phase") == "Successful"

            await cluster.wait_for(measured, what="our run measured")
            for name in ("argos", "orphan"):
                other = await cluster.client.get(ANALYSIS_RUN, cluster.namespace, name)
                assert "status" not in other or not other["status"], name
