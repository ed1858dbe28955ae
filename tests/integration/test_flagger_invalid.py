"""An invalid Canary beside a valid one: the invalid ones get a Warning Event naming the bad
field and nothing else is written for them; the valid Canary is initialised all the same."""

from __future__ import annotations

import copy

from shiftd.kube.errors import NotFound
from shiftd.kube.resources import CANARY, DEPLOYMENT, EVENT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, flagger_crds, test_cluster
from tests.integration.test_flagger_canary import canary_status, install_unchecked, seed
from tests.support.loadtester import loadtester

INVALID = {  # name -> (spec changes the CRD's schema lets through, the field named)
    "bad-interval": ({"analysis": {"interval": "1sec"}}, "spec.analysis.interval"),
    "bad-provider": ({"provider": "linkerd"}, "spec.provider: linkerd is not supported"),
    "bad-target-kind": ({"targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet",
                                       "name": "podinfo"}}, "spec.targetRef.kind"),
}


async def warnings_for(cluster: Cluster, name: str) -> list[str]:
    items, _ = await cluster.client.list(EVENT, cluster.namespace)
    return [e["message"] for e in items if e["involvedObject"]["kind"] == "Canary"
            and e["involvedObject"]["name"] == name and e["type"] == "Warning"]


async def test_invalid_canaries_are_warned_naming_the_field_and_a_valid_one_carries_on() -> None:
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments(), \
            loadtester() as tester:
        for name, (changes, _) in INVALID.items():
            canary = seed("Canary")
            canary["metadata"]["name"] = name
            canary["spec"]["analysis"].update(webhooks=[], metrics=[])
            for key, value in changes.items():
                if isinstance(value, dict) and key == "analysis":
                    canary["spec"][key].update(copy.deepcopy(value))
                else:
                    canary["spec"][key] = copy.deepcopy(value)
            await cluster.client.create(CANARY, cluster.namespace, canary)
        await install_unchecked(cluster, tester)
        async with running_daemon(cluster, clock=ManualClock()):
            async def initialized() -> bool:
                return (await canary_status(cluster)).get("phase") == "Initialized"

            await cluster.wait_for(initialized, what="the valid Canary Initialized")
            for name, (_, field) in INVALID.items():
                async def warned(name: str = name, field: str = field) -> bool:
                    return any(field in message for message in await warnings_for(cluster, name))

                await cluster.wait_for(warned, what=f"{name}'s Warning naming {field}")
                assert not (await cluster.client.get(CANARY, cluster.namespace,
                                                     name)).get("status")
            await cluster.client.get(DEPLOYMENT, cluster.namespace, "podinfo-primary")
            for name in INVALID:  # nothing made for the invalid ones (they share the target)
                try:
                    await cluster.client.get(DEPLOYMENT, cluster.namespace, f"{name}-primary")
                except NotFound:
                    continue
                raise AssertionError(f"{name}-primary was made")
