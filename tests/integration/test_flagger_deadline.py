"""progressDeadlineSeconds end to end: the canary Deployment's controller reports its progress
deadline exceeded (Progressing False, ProgressDeadlineExceeded, as Kubernetes writes it) and
the Canary is rolled back at its next interval, Failed, the primary untouched."""

from __future__ import annotations

from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import flagger_crds, test_cluster
from tests.integration.test_flagger_canary import (
    NEW_IMAGE,
    canary_events,
    canary_status,
    image_of,
    install_unchecked,
    replicas_of,
    set_image,
    tick_until,
)
from tests.support.loadtester import loadtester


async def test_a_canary_past_its_progress_deadline_is_rolled_back() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, \
            cluster.deployments() as deployments, loadtester() as tester:
        await install_unchecked(cluster, tester)
        async with running_daemon(cluster, clock=clock):
            async def initialized() -> bool:
                return (await canary_status(cluster)).get("phase") == "Initialized"

            await cluster.wait_for(initialized, what="the Canary Initialized")
            old_image = await image_of(cluster, "podinfo-primary")
            deployments.exceed_deadline(cluster.namespace, "podinfo")
            await set_image(cluster, NEW_IMAGE)
            found = await tick_until(cluster, clock, "Failed",
                                     lambda s: s.get("phase") == "Failed")
            assert found["canaryWeight"] == 0
            assert await image_of(cluster, "podinfo-primary") == old_image
            assert await replicas_of(cluster, "podinfo") == 0
            path = f"podinfo.{cluster.namespace}"
            events = await canary_events(cluster)
            assert (f'canary deployment {path} not ready: deployment "podinfo" exceeded its '
                    f'progress deadline') in events, events
            assert f"Canary failed! Scaling down {path}" in events
