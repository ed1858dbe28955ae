"""The API emulator behaves like a kube-apiserver, seen only through kubernetes_asyncio.

Each test gets a fresh emulator loaded with the Argo Rollouts and Istio CRDs (parsed once per
module) and a client for it. Waiting for state is done by polling under a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client import ApiClient, ApiException

from shiftd.sim import ApiEmulator, FakeKubelet, default_crd_files, load_crd_documents

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
ARGO = ("argoproj.io", "v1alpha1")
ISTIO = ("networking.istio.io", "v1beta1")
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def crd_documents() -> list[Obj]:
    return load_crd_documents(default_crd_files())


@pytest.fixture
async def api(crd_documents: list[Obj]) -> AsyncIterator[ApiEmulator]:
    # No task group or cancel scope lives in here, so setup and teardown may run in
    # different tasks.
    async with ApiEmulator(crds=crd_documents, bookmark_interval=0.05) as emulator:
        yield emulator


@pytest.fixture
async def kube(api: ApiEmulator) -> AsyncIterator[ApiClient]:
    async with ApiClient(api.configuration()) as api_client:
        yield api_client


def rollout(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
            **spec,
        },
    }


def service(name: str = "web", **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }


def replica_set(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds.

    The state lives in the API server, so there is no in-process event to wait on.
    """
    with anyio.fail_after(within):
        while True:
            if await check():
                return
            await anyio.sleep(0.01)


async def get_rollout(kube: ApiClient, name: str = "web") -> Obj:
    objects = client.CustomObjectsApi(kube)
    result: Obj = await objects.get_namespaced_custom_object(*ARGO, "default", "rollouts", name)
    return result


# --- CRUD ------------------------------------------------------------------------------------


async def test_objects_are_created_read_listed_updated_and_deleted(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    created = await core.create_namespaced_service("default", service())
    assert created.metadata.uid
    assert created.metadata.generation is None  # Services carry no generation
    assert created.metadata.creation_timestamp is not None

    fetched = await core.read_namespaced_service("web", "default")
    assert fetched.metadata.resource_version == created.metadata.resource_version

    fetched.metadata.labels = {"tier": "front"}
    updated = await core.replace_namespaced_service("web", "default", fetched)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    listed = await core.list_namespaced_service("default")
    assert [item.metadata.labels for item in listed.items] == [{"tier": "front"}]
    assert int(listed.metadata.resource_version) >= int(updated.metadata.resource_version)

    await core.delete_namespaced_service("web", "default")
    with pytest.raises(ApiException) as gone:
        await core.read_namespaced_service("web", "default")
    assert gone.value.status == 404


async def test_creating_an_existing_object_is_already_exists(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service())
    with pytest.raises(ApiException) as error:
        await core.create_namespaced_service("default", service())
    assert error.value.status == 409
    assert '"reason":"AlreadyExists"' in error.value.body


async def test_creating_into_a_missing_namespace_is_not_found(kube: ApiClient) -> None:
    with pytest.raises(ApiException) as error:
        await client.CoreV1Api(kube).create_namespaced_config_map(
            "nowhere", {"metadata": {"name": "settings"}}
        )
    assert error.value.status == 404
    assert 'namespaces \\"nowhere\\" not found' in error.value.body


async def test_creating_without_a_name_is_invalid_but_generate_name_works(
    kube: ApiClient,
) -> None:
    objects = client.CustomObjectsApi(kube)
    nameless = rollout()
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException) as error:
        await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", nameless)
    assert error.value.status == 422

    nameless["metadata"]["generateName"] = "web-"
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", nameless)
    assert created["metadata"]["name"].startswith("web-")
    assert len(created["metadata"]["name"]) == len("web-") + 5


# --- concurrency, generation and the status subresource ---------------------------------------


async def test_an_update_with_a_stale_resource_version_conflicts(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    stale = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", rollout())
    await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", {"spec": {"replicas": 3}}, _content_type=MERGE
    )

    with pytest.raises(ApiException) as put:
        await objects.replace_namespaced_custom_object(*ARGO, "default", "rollouts", "web", stale)
    assert put.value.status == 409
    assert "the object has been modified; please apply your changes" in put.value.body
    assert '"reason":"Conflict"' in put.value.body

    stale_rv = stale["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as patch:
        await objects.patch_namespaced_custom_object(
            *ARGO, "default", "rollouts", "web",
            {"metadata": {"resourceVersion": stale_rv}, "spec": {"replicas": 4}},
            _content_type=MERGE,
        )
    assert patch.value.status == 409


async def test_an_update_without_a_resource_version_is_unconditional(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", rollout())
    replacement = rollout(replicas=5)
    updated = await objects.replace_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", replacement
    )
    assert updated["spec"]["replicas"] == 5


async def test_generation_is_bumped_only_when_the_spec_changes(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", rollout())
    assert created["metadata"]["generation"] == 1

    labelled = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", {"metadata": {"labels": {"team": "a"}}},
        _content_type=MERGE,
    )
    assert labelled["metadata"]["generation"] == 1

    with_status = await objects.patch_namespaced_custom_object_status(
        *ARGO, "default", "rollouts", "web", {"status": {"phase": "Healthy"}},
        _content_type=MERGE,
    )
    assert with_status["metadata"]["generation"] == 1

    scaled = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", {"spec": {"replicas": 5}}, _content_type=MERGE
    )
    assert scaled["metadata"]["generation"] == 2


async def test_writes_to_the_main_resource_ignore_status_and_status_writes_ignore_the_rest(
    kube: ApiClient,
) -> None:
    objects = client.CustomObjectsApi(kube)
    body = rollout()
    body["status"] = {"phase": "Healthy"}
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", body)
    assert "status" not in created

    ignored = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", {"status": {"phase": "Degraded"}},
        _content_type=MERGE,
    )
    assert "status" not in ignored
    assert ignored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    written = await objects.patch_namespaced_custom_object_status(
        *ARGO, "default", "rollouts", "web",
        {"metadata": {"labels": {"x": "y"}}, "spec": {"replicas": 9},
         "status": {"phase": "Paused"}},
        _content_type=MERGE,
    )
    assert written["status"] == {"phase": "Paused"}
    assert written["spec"]["replicas"] == 2
    assert "labels" not in written["metadata"]

    rs = await client.AppsV1Api(kube).create_namespaced_replica_set("default", replica_set("a", 1))
    assert rs.status.replicas == 0


async def test_kinds_without_a_status_subresource_store_status_with_the_object(
    kube: ApiClient,
) -> None:
    objects = client.CustomObjectsApi(kube)
    run = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "run"},
        "spec": {"metrics": [{"name": "m", "provider": {"prometheus": {"query": "up"}}}]},
        "status": {"phase": "Running"},
    }
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "analysisruns", run)
    assert created["status"] == {"phase": "Running"}
    patched = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "analysisruns", "run", {"status": {"phase": "Successful"}},
        _content_type=MERGE,
    )
    assert patched["status"]["phase"] == "Successful"
    with pytest.raises(ApiException) as error:
        await objects.get_namespaced_custom_object_status(
            *ARGO, "default", "analysisruns", "run"
        )
    assert error.value.status == 404


# --- patches ---------------------------------------------------------------------------------


async def test_merge_and_json_patches_apply_and_a_failing_json_patch_test_is_invalid(
    kube: ApiClient,
) -> None:
    objects = client.CustomObjectsApi(kube)
    await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", rollout())

    merged = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web",
        {"spec": {"paused": True, "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}},
        _content_type=MERGE,
    )
    assert merged["spec"]["paused"] is True
    assert merged["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 50}]

    removed = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", {"spec": {"paused": None}}, _content_type=MERGE
    )
    assert "paused" not in removed["spec"]

    patched = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web",
        [
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 4},
            {"op": "add", "path": "/spec/strategy/canary/steps/-", "value": {"pause": {}}},
        ],
    )
    assert patched["spec"]["replicas"] == 4
    assert patched["spec"]["strategy"]["canary"]["steps"][-1] == {"pause": {}}

    with pytest.raises(ApiException) as error:
        await objects.patch_namespaced_custom_object(
            *ARGO, "default", "rollouts", "web",
            [{"op": "test", "path": "/spec/replicas", "value": 2}],
        )
    assert error.value.status == 422
    assert '"kind":"Status"' in error.value.body


async def test_strategic_merge_is_refused_for_a_virtual_service_but_merges_a_service(
    kube: ApiClient,
) -> None:
    objects = client.CustomObjectsApi(kube)
    virtual_service = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    }
    await objects.create_namespaced_custom_object(
        *ISTIO, "default", "virtualservices", virtual_service
    )
    with pytest.raises(ApiException) as error:
        await objects.patch_namespaced_custom_object(
            *ISTIO, "default", "virtualservices", "web", {"spec": {"hosts": ["x"]}},
            _content_type=STRATEGIC,
        )
    assert error.value.status == 415
    assert '"reason":"UnsupportedMediaType"' in error.value.body

    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service())
    # A dict body makes kubernetes_asyncio pick strategic merge for a Service.
    patched = await core.patch_namespaced_service(
        "web", "default",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"name": "metrics", "port": 9090}]}},
    )
    assert [(p.name, p.port, p.target_port) for p in patched.spec.ports] == [
        ("http", 80, 8080),
        ("metrics", 9090, 9090),  # targetPort defaults to port
    ]
    deleted = await core.patch_namespaced_service(
        "web", "default", {"spec": {"ports": [{"port": 9090, "$patch": "delete"}]}}
    )
    assert [p.port for p in deleted.spec.ports] == [80]


async def test_server_side_apply_creates_then_merges(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    # Creating answers 201, which kubernetes_asyncio's patch does not decode (it returns None).
    await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", rollout(), field_manager="tests",
        _content_type=APPLY,
    )
    first = await get_rollout(kube)
    assert first["metadata"]["generation"] == 1
    second = await objects.patch_namespaced_custom_object(
        *ARGO, "default", "rollouts", "web", rollout(replicas=6), field_manager="tests",
        _content_type=APPLY,
    )
    assert second["spec"]["replicas"] == 6
    assert second["metadata"]["uid"] == first["metadata"]["uid"]


# --- pruning ---------------------------------------------------------------------------------


async def test_unknown_fields_in_a_rollout_spec_and_status_are_pruned(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    body = rollout(surprise="yes")
    body["spec"]["template"]["spec"]["containers"][0]["madeUp"] = 1
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", body)
    assert "surprise" not in created["spec"]
    assert created["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1"}
    ]

    status = await objects.patch_namespaced_custom_object_status(
        *ARGO, "default", "rollouts", "web",
        {"status": {"phase": "Healthy", "notAStatusField": True,
                    "canary": {"weights": {"canary": {"weight": 20, "bogus": 1},
                                           "stable": {"weight": 80}}}}},
        _content_type=MERGE,
    )
    assert status["status"] == {
        "phase": "Healthy",
        "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}},
    }


# --- selectors -------------------------------------------------------------------------------


async def test_label_and_field_selectors_filter_lists(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service("a", tier="front", env="prod"))
    await core.create_namespaced_service("default", service("b", tier="back", env="prod"))
    await core.create_namespaced_service("default", service("c", tier="front"))

    async def names(**query: str) -> list[str]:
        listed = await core.list_namespaced_service("default", **query)
        return [item.metadata.name for item in listed.items]

    assert await names(label_selector="tier=front") == ["a", "c"]
    assert await names(label_selector="tier==front,env=prod") == ["a"]
    assert await names(label_selector="tier!=front") == ["b"]
    assert await names(label_selector="tier in (back, middle)") == ["b"]
    assert await names(label_selector="tier notin (back),env") == ["a"]
    assert await names(label_selector="!env") == ["c"]
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(field_selector="metadata.name!=b,metadata.namespace=default") == ["a", "c"]
    with pytest.raises(ApiException) as error:
        await names(field_selector="spec.clusterIP=1.2.3.4")
    assert error.value.status == 400


# --- watches ---------------------------------------------------------------------------------


async def next_events(stream: Any, count: int) -> list[tuple[str, str]]:
    events = []
    with anyio.fail_after(5):
        async for event in stream:
            events.append((event["type"], event["raw_object"]["metadata"].get("name", "")))
            if len(events) == count:
                break
    return events


async def test_a_watch_resumes_after_a_resource_version(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service("a"))
    listed = await core.list_namespaced_service("default")
    await core.create_namespaced_service("default", service("b"))
    await core.patch_namespaced_service("a", "default", {"metadata": {"labels": {"x": "1"}}})
    await core.delete_namespaced_service("b", "default")

    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_namespaced_service, "default",
        resource_version=listed.metadata.resource_version, timeout_seconds=5,
    )
    try:
        assert await next_events(stream, 3) == [
            ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")
        ]
    finally:
        await watcher.close()


async def test_a_watch_across_namespaces_sees_every_namespace_and_deletions_get_a_new_version(
    kube: ApiClient,
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespace({"metadata": {"name": "other"}})
    listed = await core.list_service_for_all_namespaces()
    first = await core.create_namespaced_service("default", service("a"))
    await core.create_namespaced_service("other", service("b"))
    await core.delete_namespaced_service("a", "default")

    watcher = watch.Watch()
    stream = watcher.stream(core.list_service_for_all_namespaces,
                            resource_version=listed.metadata.resource_version, timeout_seconds=5)
    try:
        events = []
        with anyio.fail_after(5):
            async for event in stream:
                events.append(event["raw_object"])
                if len(events) == 3:
                    break
    finally:
        await watcher.close()
    assert [(e["metadata"]["namespace"], e["metadata"]["name"]) for e in events] == [
        ("default", "a"), ("other", "b"), ("default", "a")
    ]
    assert int(events[2]["metadata"]["resourceVersion"]) > int(first.metadata.resource_version)


async def test_a_watch_from_version_zero_starts_with_the_current_objects(
    kube: ApiClient,
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service("a"))
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_service, "default", resource_version="0",
                            timeout_seconds=5)
    try:
        assert await next_events(stream, 1) == [("ADDED", "a")]
        await core.create_namespaced_service("default", service("b"))
        assert await next_events(stream, 1) == [("ADDED", "b")]
    finally:
        await watcher.close()


async def test_a_label_selector_watch_sees_an_object_that_stops_matching_as_deleted(
    kube: ApiClient,
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service("a", tier="front"))
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_service, "default", resource_version="0",
                            label_selector="tier=front", timeout_seconds=5)
    try:
        assert await next_events(stream, 1) == [("ADDED", "a")]
        await core.patch_namespaced_service("a", "default",
                                            {"metadata": {"labels": {"tier": "back"}}})
        assert await next_events(stream, 1) == [("DELETED", "a")]
    finally:
        await watcher.close()


async def test_a_watch_that_allows_bookmarks_receives_them(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    created = await objects.create_namespaced_custom_object(*ARGO, "default", "rollouts", rollout())
    watcher = watch.Watch()
    stream = watcher.stream(
        objects.list_namespaced_custom_object, *ARGO, "default", "rollouts",
        resource_version=created["metadata"]["resourceVersion"],
        allow_watch_bookmarks=True, timeout_seconds=5,
    )
    try:
        with anyio.fail_after(5):
            event = await stream.__anext__()
        assert event["type"] == "BOOKMARK"
        assert event["raw_object"]["kind"] == "Rollout"
        assert int(event["raw_object"]["metadata"]["resourceVersion"]) >= int(
            created["metadata"]["resourceVersion"]
        )
    finally:
        await watcher.close()


async def test_a_watch_ends_cleanly_when_its_timeout_passes(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    listed = await core.list_namespaced_service("default")
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_service, "default",
                            resource_version=listed.metadata.resource_version, timeout_seconds=1)
    with anyio.fail_after(5):
        assert [event async for event in stream] == []


async def test_a_watch_from_before_a_compaction_is_gone(
    api: ApiEmulator, kube: ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    old = await core.create_namespaced_service("default", service("a"))
    await core.create_namespaced_service("default", service("b"))
    api.compact()

    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_service, "default",
                            resource_version=old.metadata.resource_version, timeout_seconds=5)
    with anyio.fail_after(5), pytest.raises(ApiException) as error:
        await stream.__anext__()
    assert error.value.status == 410
    assert "too old resource version" in str(error.value.reason)

    current = await core.list_namespaced_service("default")
    fresh = watch.Watch()
    resumed = fresh.stream(core.list_namespaced_service, "default",
                           resource_version=current.metadata.resource_version, timeout_seconds=5)
    try:
        await core.delete_namespaced_service("a", "default")
        assert await next_events(resumed, 1) == [("DELETED", "a")]
    finally:
        await fresh.close()


async def test_drop_watches_breaks_open_streams(api: ApiEmulator, kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service("default", service("a"))
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_service, "default", resource_version="0",
                            timeout_seconds=30)
    assert await next_events(stream, 1) == [("ADDED", "a")]
    api.drop_watches()
    with anyio.fail_after(5), pytest.raises(aiohttp.ClientError):
        await stream.__anext__()


# --- CRDs at runtime, versions, cascades -----------------------------------------------------


def widget_crd() -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
            }],
        },
    }


async def test_a_crd_applied_at_runtime_serves_its_kind(kube: ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(kube)
    crd = await extensions.patch_custom_resource_definition(
        "widgets.example.com", widget_crd(), field_manager="tests", _content_type=APPLY
    )
    established = {c.type: c.status for c in crd.status.conditions}
    assert established["Established"] == "True"

    resources = await client.CustomObjectsApi(kube).get_api_resources("example.com", "v1")
    assert {r.name for r in resources.resources} == {"widgets", "widgets/status"}

    objects = client.CustomObjectsApi(kube)
    widget = await objects.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
         "spec": {"size": 3, "colour": "red"}},
    )
    assert widget["spec"] == {"size": 3}

    await extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as error:
        await objects.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert error.value.status == 404


async def test_every_served_version_of_a_crd_shares_one_storage(kube: ApiClient) -> None:
    objects = client.CustomObjectsApi(kube)
    await objects.create_namespaced_custom_object(
        *ISTIO, "default", "destinationrules",
        {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
         "metadata": {"name": "web"}, "spec": {"host": "web"}},
    )
    as_v1 = await objects.get_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "destinationrules", "web"
    )
    assert as_v1["apiVersion"] == "networking.istio.io/v1"
    assert as_v1["spec"] == {"host": "web"}


async def test_deleting_an_owner_or_a_namespace_deletes_what_it_holds(kube: ApiClient) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    await core.create_namespace({"metadata": {"name": "team"}})
    owner = await apps.create_namespaced_deployment("team", replica_set("web", 1))
    owned = replica_set("web-abc", 1)
    owned["metadata"]["ownerReferences"] = [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner.metadata.uid,
        "controller": True,
    }]
    await apps.create_namespaced_replica_set("team", owned)
    await core.create_namespaced_config_map("team", {"metadata": {"name": "settings"}})

    await apps.delete_namespaced_deployment("web", "team")
    assert (await apps.list_namespaced_replica_set("team")).items == []

    await core.delete_namespace("team")
    assert (await core.list_config_map_for_all_namespaces()).items == []


# --- connection details and hooks ------------------------------------------------------------


async def test_the_kubeconfig_loads_with_kubernetes_asyncio(
    api: ApiEmulator, tmp_path: Path
) -> None:
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(str(path), client_configuration=configuration)
    async with ApiClient(configuration) as api_client:
        namespaces = await client.CoreV1Api(api_client).list_namespace()
    assert "default" in {ns.metadata.name for ns in namespaces.items}


async def test_an_injected_failure_answers_once_and_requests_are_logged(
    api: ApiEmulator, kube: ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    api.fail_next("GET", r"/namespaces/default/services$", 500)
    with pytest.raises(ApiException) as error:
        await core.list_namespaced_service("default")
    assert error.value.status == 500
    await core.list_namespaced_service("default")
    statuses = [entry.status for entry in api.request_log if entry.path.endswith("/services")]
    assert statuses == [500, 200]


# --- the fake kubelet ------------------------------------------------------------------------


async def ready_replicas(apps: client.AppsV1Api, name: str) -> int:
    rs = await apps.read_namespaced_replica_set_status(name, "default")
    return int(rs.status.ready_replicas or 0)


async def test_the_kubelet_marks_a_replica_set_ready_and_scales_down_at_once(
    kube: ApiClient,
) -> None:
    apps = client.AppsV1Api(kube)
    await apps.create_namespaced_replica_set("default", replica_set("web", 3))
    kubelet = FakeKubelet(kube, namespaces=["default"], ready_after=0.1)
    async with anyio.create_task_group() as tg:
        await tg.start(kubelet.run)

        async def three_ready() -> bool:
            return await ready_replicas(apps, "web") == 3

        await eventually(three_ready)
        rs = await apps.read_namespaced_replica_set_status("web", "default")
        assert rs.status.observed_generation == rs.metadata.generation
        assert rs.status.available_replicas == 3

        kubelet.ready_after = 3600.0  # a scale-down must not wait for readiness
        await apps.patch_namespaced_replica_set("web", "default", {"spec": {"replicas": 1}})

        async def one_ready() -> bool:
            return await ready_replicas(apps, "web") == 1

        await eventually(one_ready)
        tg.cancel_scope.cancel()


async def test_a_held_replica_set_stays_unready_until_released(kube: ApiClient) -> None:
    apps = client.AppsV1Api(kube)
    kubelet = FakeKubelet(kube, namespaces=["default"], ready_after=0.0, create_pods=True)
    kubelet.hold("default", "web")
    async with anyio.create_task_group() as tg:
        await tg.start(kubelet.run)
        await apps.create_namespaced_replica_set("default", replica_set("web", 2))

        async def scaled_but_unready() -> bool:
            rs = await apps.read_namespaced_replica_set_status("web", "default")
            return rs.status.replicas == 2

        await eventually(scaled_but_unready)
        assert await ready_replicas(apps, "web") == 0

        kubelet.release("default", "web")

        async def two_ready_pods() -> bool:
            pods = await client.CoreV1Api(kube).list_namespaced_pod("default",
                                                                    label_selector="app=web")
            ready = [
                pod for pod in pods.items
                if any(c.type == "Ready" and c.status == "True"
                       for c in pod.status.conditions or ())
            ]
            return len(ready) == 2 and await ready_replicas(apps, "web") == 2

        await eventually(two_ready_pods)
        tg.cancel_scope.cancel()
