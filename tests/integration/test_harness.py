"""The integration harness itself: examples land in the test namespace as the seeds wrote them.

Runs against the emulator, or unchanged against ``$SHIFTD_TEST_KUBECONFIG``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from shiftd.kube.errors import NotFound
from shiftd.kube.resources import REPLICA_SET, ROLLOUT
from tests.integration import harness
from tests.integration.harness import example_documents

pytestmark = pytest.mark.integration

Obj = dict[str, Any]


def seed_rollout(folder: str) -> Obj:
    """The example's Rollout without background analysis, as the seed wrote it."""
    rollouts = [d for d in example_documents(folder) if d["kind"] == "Rollout"]
    without = [r for r in rollouts if "analysis" not in r["spec"]["strategy"]["canary"]]
    rollout = copy.deepcopy((without or rollouts)[0])
    rollout["spec"]["strategy"]["canary"].pop("analysis", None)
    return rollout


def added_fields(stored: Any, written: Any, path: str = "") -> list[str]:
    """Paths the server added to what was written; AssertionError if it changed or dropped
    anything that was written."""
    if isinstance(written, dict):
        assert isinstance(stored, dict), f"{path}: {stored!r} is not an object"
        for key in written:
            assert key in stored, f"{path}.{key} was dropped"
        return [added for key in stored for added in (
            added_fields(stored[key], written[key], f"{path}.{key}") if key in written
            else [f"{path}.{key}"])]
    if isinstance(written, list):
        assert isinstance(stored, list) and len(stored) == len(written), f"{path} changed"
        return [added for index, (left, right) in enumerate(zip(stored, written, strict=True))
                for added in added_fields(left, right, f"{path}[{index}]")]
    assert stored == written, f"{path}: {written!r} read back as {stored!r}"
    return []


@pytest.mark.parametrize("folder", ["asm-host-split", "imesh-host-split", "myapp-analysis"])
async def test_an_example_is_created_in_the_test_namespace_and_reads_back_unchanged(
    folder: str,
) -> None:
    async with harness.test_cluster() as cluster:
        created = await cluster.apply_example(folder)
        assert {obj["metadata"]["namespace"] for obj in created} == {cluster.namespace}

        rollout = await cluster.rollout()
        # Everything the seed wrote reads back; the server adds only the Rollout CRD's schema
        # default (a container port's protocol), as a real API server does.
        added = added_fields(rollout["spec"], seed_rollout(folder)["spec"])
        assert all(re.fullmatch(r"\.template\.spec\.containers\[\d+\]\.ports\[\d+\]\.protocol",
                                path) for path in added), added
        assert "analysis" not in rollout["spec"]["strategy"]["canary"]

        vs = await cluster.vs()
        seed_vs = next(d for d in example_documents(folder) if d["kind"] == "VirtualService")
        assert vs["spec"] == seed_vs["spec"]

        for seed_service in (d for d in example_documents(folder) if d["kind"] == "Service"):
            service = await cluster.service(seed_service["metadata"]["name"])
            assert service["spec"]["selector"] == seed_service["spec"]["selector"]

        assert await cluster.replica_sets() == []
        kinds = {obj["kind"] for obj in created}
        assert "Namespace" not in kinds
        assert "Gateway" in kinds  # the Gateway CRD is installed too


async def test_an_example_keeps_its_analysis_when_asked() -> None:
    async with harness.test_cluster() as cluster:
        await cluster.apply_example("asm-host-split", exclude_analysis=False)
        rollout = await cluster.rollout()
        analysis = rollout["spec"]["strategy"]["canary"]["analysis"]
        assert analysis["templates"] == [{"templateName": "istio-success-rate"}]
        assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == (
            "argoproj/rollouts-demo:yellow")


async def test_kinds_without_their_crd_are_left_out() -> None:
    crds = [d for d in harness.default_crds() if d["spec"]["names"]["kind"] != "Gateway"]
    async with harness.test_cluster(crds=crds) as cluster:
        created = await cluster.apply_example("imesh-host-split")
        assert "Gateway" not in {obj["kind"] for obj in created}
        assert [obj["kind"] for obj in cluster.skipped] == ["Gateway"]


async def test_each_cluster_gets_its_own_namespace() -> None:
    async with harness.test_cluster() as first, harness.test_cluster() as second:
        assert first.namespace.startswith("shiftd-test-")
        assert first.namespace != second.namespace
        await first.apply_example("imesh-host-split")
        with pytest.raises(NotFound):
            await second.client.get(ROLLOUT, second.namespace, "imesh-rollout")


async def test_wait_for_names_what_it_waited_for_and_the_last_value() -> None:
    async with harness.test_cluster() as cluster:
        await cluster.apply_example("imesh-host-split")

        async def phase() -> str | None:
            return ((await cluster.rollout()).get("status") or {}).get("phase")

        with pytest.raises(AssertionError) as caught:
            await cluster.wait_for(phase, timeout=0.2, what="a phase nobody writes")
        assert str(caught.value) == (
            "timed out after 0.2s waiting for a phase nobody writes; last value: None")

        await cluster.patch_status({"status": {"phase": "Healthy"}})
        assert await cluster.wait_for(phase, what="the phase written") == "Healthy"
        assert await cluster.wait_for(lambda: 7, what="a sync predicate") == 7


async def test_the_fake_kubelet_makes_replica_sets_ready_in_the_test_namespace() -> None:
    async with harness.test_cluster() as cluster:
        replica_set = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "w:1"}]}}},
        }
        async with cluster.kubelet():
            await cluster.client.create(REPLICA_SET, cluster.namespace, replica_set)

            async def ready() -> bool:
                sets = await cluster.replica_sets()
                return int((sets[0].get("status") or {}).get("readyReplicas") or 0) == 2

            await cluster.wait_for(ready, what="two ready replicas")


async def test_a_failure_inside_the_kubelet_block_surfaces_as_itself() -> None:
    async with harness.test_cluster() as cluster:
        with pytest.raises(AssertionError) as caught:
            async with cluster.kubelet():
                raise AssertionError("inside")
        assert str(caught.value) == "inside"
