"""The emulator's ``pods/eviction`` subresource, driven through kubernetes_asyncio's own
``create_namespaced_pod_eviction`` as a real client sends it, and the fake kubelet replacing
an evicted pod as a ReplicaSet controller would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient, ApiException

from shiftd.sim import ApiEmulator, FakeKubelet
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration

Obj = dict[str, Any]


@pytest.fixture
async def kube() -> AsyncIterator[ApiClient]:
    async with ApiEmulator(crds=()) as api, ApiClient(api.configuration()) as api_client:
        yield api_client


def pod(name: str, *, app: str = "web") -> Obj:
    return {"metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}


async def make_pod(core: client.CoreV1Api, name: str, *, ready: bool = True) -> None:
    await core.create_namespaced_pod("default", pod(name))
    flag = "True" if ready else "False"
    await core.patch_namespaced_pod_status(
        name, "default", {"status": {"conditions": [{"type": "Ready", "status": flag}]}})


def eviction(name: str) -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))


async def evict(core: client.CoreV1Api, name: str) -> tuple[int, Obj]:
    try:
        answer = await core.create_namespaced_pod_eviction(
            name, "default", eviction(name), _preload_content=False)
    except ApiException as error:
        return error.status, json.loads(error.body)
    return answer.status, json.loads(await answer.read())


async def pod_names(core: client.CoreV1Api) -> set[str]:
    return {item.metadata.name for item in (await core.list_namespaced_pod("default")).items}


async def test_an_evicted_pod_is_deleted_and_the_answer_is_a_success_status(
    kube: ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    await make_pod(core, "web-1")
    assert await evict(core, "web-1") == (201, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "code": 201})
    assert await pod_names(core) == set()


async def test_evicting_a_missing_pod_is_not_found(kube: ApiClient) -> None:
    status, body = await evict(client.CoreV1Api(kube), "nobody")
    assert (status, body["reason"], body["message"]) == (
        404, "NotFound", 'pods "nobody" not found')


async def test_an_eviction_naming_another_pod_is_a_bad_request(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    await make_pod(core, "web-1")
    try:
        await core.create_namespaced_pod_eviction("web-1", "default", eviction("web-2"))
    except ApiException as error:
        assert error.status == 400
        assert "does not match" in json.loads(error.body)["message"]
    else:
        raise AssertionError("an eviction naming another pod was accepted")
    assert await pod_names(core) == {"web-1"}


async def test_a_disruption_budget_refuses_an_eviction_with_429_until_it_allows_one(
    kube: ApiClient
) -> None:
    core, policy = client.CoreV1Api(kube), client.PolicyV1Api(kube)
    for name in ("web-1", "web-2"):
        await make_pod(core, name)
    await policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    status, body = await evict(core, "web-1")
    assert status == 429
    assert (body["reason"], body["message"], body["details"]["causes"]) == (
        "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
        [{"reason": "DisruptionBudget",
          "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}])
    await make_pod(core, "web-3")  # a third healthy pod: one may go
    assert (await evict(core, "web-1"))[0] == 201
    assert (await evict(core, "web-2"))[0] == 429
    assert await pod_names(core) == {"web-2", "web-3"}


async def test_an_unready_pod_may_be_evicted_while_its_budget_is_met(kube: ApiClient) -> None:
    core, policy = client.CoreV1Api(kube), client.PolicyV1Api(kube)
    await make_pod(core, "web-1")
    await make_pod(core, "web-2", ready=False)
    await policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "web"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})
    assert (await evict(core, "web-2"))[0] == 201
    assert (await evict(core, "web-1"))[0] == 429


async def test_the_fake_kubelet_replaces_an_evicted_pod_with_a_new_unready_one(
    kube: ApiClient
) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    kubelet = FakeKubelet(kube, namespaces=["default"], create_pods=True)
    async with anyio.create_task_group() as tg:
        await tg.start(kubelet.run)
        await apps.create_namespaced_replica_set("default", {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": pod("web")}})

        async def ready_replicas(count: int) -> bool:
            rs = await apps.read_namespaced_replica_set_status("web", "default")
            return (rs.status.ready_replicas or 0) == count

        await wait_for(lambda: ready_replicas(2), what="two ready pods")
        before = await pod_names(core)
        kubelet.ready_after = 3600.0  # the replacement stays unready
        victim = sorted(before)[0]
        assert (await evict(core, victim))[0] == 201

        async def replaced() -> bool:
            return len((await pod_names(core)) - before) == 1 and await ready_replicas(1)

        await wait_for(replaced, what="the evicted pod replaced")
        names = await pod_names(core)
        assert victim not in names and len(names) == 2
        tg.cancel_scope.cancel()


async def test_discovery_lists_the_eviction_subresource_as_a_real_server_does(
    kube: ApiClient
) -> None:
    resources = await client.CoreV1Api(kube).get_api_resources()
    (entry,) = [r for r in resources.resources if r.name == "pods/eviction"]
    assert (entry.group, entry.version, entry.kind, entry.verbs) == (
        "policy", "v1", "Eviction", ["create"])
