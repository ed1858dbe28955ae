"""Seed 003's HPA pair written through ``autoscaling/v2beta2`` (as the seed's autoscalerRef
names it): the daemon reads the user's HPA through v2, gives the primary its own, and scales
the canary from zero to the HPA's minimum. Skipped on a server past 1.25 (v2beta2 removed)."""

from __future__ import annotations

import pytest

from shiftd.kube.errors import NotFound
from shiftd.kube.resources import CANARY, DEPLOYMENT, HORIZONTAL_POD_AUTOSCALER, ResourceKind
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import flagger_crds, test_cluster
from tests.integration.test_flagger_canary import (
    NEW_IMAGE,
    canary_status,
    replicas_of,
    seed,
    set_image,
    tick_until,
)

HPA_V2BETA2 = ResourceKind("autoscaling", "v2beta2", "HorizontalPodAutoscaler",
                           "horizontalpodautoscalers")


async def test_an_hpa_written_as_v2beta2_gets_its_primary_pair_and_scales_the_canary() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments():
        namespace = cluster.namespace
        await cluster.client.create(DEPLOYMENT, namespace, seed("Deployment"))
        hpa = {**seed("HorizontalPodAutoscaler"), "apiVersion": "autoscaling/v2beta2"}
        try:
            await cluster.client.create(HPA_V2BETA2, namespace, hpa)
        except NotFound:
            if cluster.api is not None:
                raise  # the emulator plays 1.24, which serves v2beta2
            pytest.skip("this server no longer serves autoscaling/v2beta2")
        canary = seed("Canary")
        canary["spec"]["analysis"].update(metrics=[], webhooks=[])
        assert canary["spec"]["autoscalerRef"]["apiVersion"] == "autoscaling/v2beta2"
        await cluster.client.create(CANARY, namespace, canary)
        async with running_daemon(cluster, clock=clock):
            async def initialized() -> bool:
                return (await canary_status(cluster)).get("phase") == "Initialized"

            await cluster.wait_for(initialized, what="the Canary Initialized")
            for kind in (HPA_V2BETA2, HORIZONTAL_POD_AUTOSCALER):
                primary = await cluster.client.get(kind, namespace, "podinfo-primary")
                assert primary["apiVersion"] == kind.api_version
                assert primary["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
                assert (primary["spec"]["minReplicas"], primary["spec"]["maxReplicas"]) == (2, 4)
                assert primary["spec"]["metrics"] == hpa["spec"]["metrics"]
            await set_image(cluster, NEW_IMAGE)
            await tick_until(cluster, clock, "Progressing",
                             lambda s: s.get("phase") == "Progressing")
            assert await replicas_of(cluster, "podinfo") == 2  # the v2beta2 HPA's minimum
