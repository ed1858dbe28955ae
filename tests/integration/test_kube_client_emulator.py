"""KubeClient against the API emulator: real HTTP, kubeconfig loading, patches and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest

from shiftd.kube.client import KubeClient, WatchEvent
from shiftd.kube.errors import Conflict, Gone, Invalid, NotFound, UnsupportedMediaType
from shiftd.kube.resources import ROLLOUT, SERVICE, VIRTUAL_SERVICE
from shiftd.sim import ApiEmulator, default_crd_files, load_crd_documents

pytestmark = pytest.mark.integration

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def crd_documents() -> list[Obj]:
    return load_crd_documents(default_crd_files())


@pytest.fixture
async def api(crd_documents: list[Obj]) -> AsyncIterator[ApiEmulator]:
    async with ApiEmulator(crds=crd_documents, bookmark_interval=0.05) as emulator:
        yield emulator


@pytest.fixture
def requests() -> list[tuple[str, int]]:
    return []


@pytest.fixture
async def kube(
    api: ApiEmulator, tmp_path: Path, requests: list[tuple[str, int]]
) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_settings(
        kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")),
        context="shiftd-emulator",
        in_cluster=False,
        qps=100,
        burst=100,
        on_request=lambda verb, status: requests.append((verb, status)),
    )
    async with client:
        yield client


def rollout(name: str = "web") -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }


def virtual_service(name: str = "web") -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [name],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {"destination": {"host": f"{name}-stable"}, "weight": 100},
                        {"destination": {"host": f"{name}-canary"}, "weight": 0},
                    ],
                }
            ],
        },
    }


async def test_a_rollout_goes_through_create_get_list_replace_and_delete(
    kube: KubeClient, requests: list[tuple[str, int]]
) -> None:
    created = await kube.create(ROLLOUT, "default", rollout())
    assert created["metadata"]["uid"]
    assert created["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 20}, {"pause": {}}]

    fetched = await kube.get(ROLLOUT, "default", "web")
    assert fetched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    items, version = await kube.list(ROLLOUT, "default", label_selector="app=web")
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        ("argoproj.io/v1alpha1", "Rollout", "web")
    ]
    assert int(version) >= int(created["metadata"]["resourceVersion"])
    assert (await kube.list(ROLLOUT, label_selector="app=other"))[0] == []

    fetched["spec"]["replicas"] = 5
    replaced = await kube.replace(ROLLOUT, "default", "web", fetched)
    assert replaced["spec"]["replicas"] == 5

    replaced["status"] = {"phase": "Progressing"}
    with_status = await kube.replace(ROLLOUT, "default", "web", replaced, subresource="status")
    assert with_status["status"] == {"phase": "Progressing"}

    await kube.delete(ROLLOUT, "default", "web")
    with pytest.raises(NotFound):
        await kube.get(ROLLOUT, "default", "web")
    assert [verb for verb, _ in requests] == [
        "create",
        "get",
        "list",
        "list",
        "update",
        "update",
        "delete",
        "get",
    ]
    assert requests[-1] == ("get", 404)


async def test_merge_patch_merges_objects_and_null_removes_a_field(kube: KubeClient) -> None:
    await kube.create(ROLLOUT, "default", rollout())
    patched = await kube.patch(
        ROLLOUT,
        "default",
        "web",
        {"metadata": {"labels": {"app": None, "tier": "front"}}, "spec": {"replicas": 4}},
        patch_type="merge",
    )
    assert patched["metadata"]["labels"] == {"tier": "front"}
    assert patched["spec"]["replicas"] == 4
    # A merge patch replaces lists wholesale.
    patched = await kube.patch(
        ROLLOUT,
        "default",
        "web",
        {"spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}]}}}},
        patch_type="merge",
    )
    assert patched["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 50}]


async def test_json_patch_applies_its_operations_in_order(kube: KubeClient) -> None:
    await kube.create(VIRTUAL_SERVICE, "default", virtual_service())
    patched = await kube.patch(
        VIRTUAL_SERVICE,
        "default",
        "web",
        [
            {"op": "test", "path": "/spec/http/0/route/1/weight", "value": 0},
            {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
            {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20},
        ],
        patch_type="json",
    )
    assert [r["weight"] for r in patched["spec"]["http"][0]["route"]] == [80, 20]


async def test_a_failed_json_patch_test_operation_changes_nothing(kube: KubeClient) -> None:
    await kube.create(VIRTUAL_SERVICE, "default", virtual_service())
    with pytest.raises((Invalid, Conflict)):
        await kube.patch(
            VIRTUAL_SERVICE,
            "default",
            "web",
            [
                {"op": "test", "path": "/spec/http/0/route/1/weight", "value": 99},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 1},
            ],
            patch_type="json",
        )
    current = await kube.get(VIRTUAL_SERVICE, "default", "web")
    assert current["spec"]["http"][0]["route"][0]["weight"] == 100


async def test_strategic_merge_patch_is_415_on_a_virtual_service_but_works_on_a_service(
    kube: KubeClient,
) -> None:
    await kube.create(VIRTUAL_SERVICE, "default", virtual_service())
    with pytest.raises(UnsupportedMediaType):
        await kube.patch(
            VIRTUAL_SERVICE, "default", "web", {"spec": {"hosts": ["x"]}}, patch_type="strategic"
        )
    await kube.create(
        SERVICE,
        "default",
        {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}]}},
    )
    patched = await kube.patch(
        SERVICE,
        "default",
        "web",
        {"spec": {"selector": {"app": "web"}}},
        patch_type="strategic",
    )
    assert patched["spec"]["selector"] == {"app": "web"}


async def test_server_side_apply_creates_and_then_updates_as_shiftd(kube: KubeClient) -> None:
    applied = await kube.patch(
        VIRTUAL_SERVICE, "default", "web", virtual_service(), patch_type="apply"
    )
    assert applied["spec"]["hosts"] == ["web"]
    changed = virtual_service()
    changed["spec"]["hosts"] = ["web", "web.example.com"]
    applied = await kube.patch(VIRTUAL_SERVICE, "default", "web", changed, patch_type="apply")
    assert applied["spec"]["hosts"] == ["web", "web.example.com"]


async def test_a_write_with_a_stale_resource_version_is_a_conflict(kube: KubeClient) -> None:
    created = await kube.create(ROLLOUT, "default", rollout())
    await kube.patch(ROLLOUT, "default", "web", {"spec": {"replicas": 3}}, patch_type="merge")
    created["spec"]["replicas"] = 9
    with pytest.raises(Conflict):
        await kube.replace(ROLLOUT, "default", "web", created)
    with pytest.raises(Conflict):
        await kube.patch(
            ROLLOUT,
            "default",
            "web",
            {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}},
            patch_type="merge",
        )
    with pytest.raises(Conflict):
        await kube.create(ROLLOUT, "default", rollout())
    assert (await kube.get(ROLLOUT, "default", "web"))["spec"]["replicas"] == 3


async def test_a_watch_streams_changes_after_its_version(kube: KubeClient) -> None:
    _, version = await kube.list(ROLLOUT, "default")
    seen: list[tuple[str, str]] = []
    async with aclosing(
        kube.watch(ROLLOUT, "default", resource_version=version, timeout_seconds=30)
    ) as events:
        await kube.create(ROLLOUT, "default", rollout())
        await kube.delete(ROLLOUT, "default", "web")
        with anyio.fail_after(5):
            async for event in events:
                if event.type != "BOOKMARK":
                    seen.append((event.type, event.object["metadata"]["name"]))
                if len(seen) == 2:
                    break
    assert seen == [("ADDED", "web"), ("DELETED", "web")]


async def test_watching_from_a_compacted_version_raises_gone(
    api: ApiEmulator, kube: KubeClient
) -> None:
    _, version = await kube.list(ROLLOUT, "default")
    await kube.create(ROLLOUT, "default", rollout())
    api.compact()
    events: list[WatchEvent] = []
    with pytest.raises(Gone):
        async with aclosing(kube.watch(ROLLOUT, resource_version=version)) as stream:
            with anyio.fail_after(5):
                events.extend([event async for event in stream])
    assert events == []
