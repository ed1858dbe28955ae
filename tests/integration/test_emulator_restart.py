"""The emulator stopped and restarted with its data, as a kube-apiserver over the same etcd.

A restart keeps the port, the certificate authority and the users' tokens, cuts every open
watch, and (``lose_history=True``) forgets the watch cache's history so a resumed watch gets
410 Expired. Clients see it only through the network: kubernetes_asyncio and shiftd's own
``KubeClient`` and ``Informer``. Waiting is on callbacks or polling under a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client import ApiClient, ApiException

from shiftd.kube.client import KubeClient
from shiftd.kube.informer import Informer
from shiftd.kube.resources import SERVICE
from shiftd.sim import (
    ApiEmulator,
    EmulatedUser,
    FakeKubelet,
    default_crd_files,
    load_crd_documents,
)

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
READER_TOKEN = "token-of-a-reader"
READER_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: service-reader}
rules: [{apiGroups: [""], resources: [services], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: service-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: service-reader}
subjects: [{kind: User, name: reader}]
"""


@pytest.fixture(scope="module")
def crd_documents() -> list[Obj]:
    return load_crd_documents(default_crd_files())


@pytest.fixture
async def api(crd_documents: list[Obj]) -> AsyncIterator[ApiEmulator]:
    async with ApiEmulator(
        crds=crd_documents, bookmark_interval=0.05, tls=True,
        users={READER_TOKEN: EmulatedUser("reader")}, rbac=READER_RBAC,
    ) as emulator:
        yield emulator


def service(name: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }


async def test_a_restarted_server_keeps_its_objects_address_certificate_and_tokens(
    api: ApiEmulator,
) -> None:
    url, ca = api.url, api.ca_pem
    async with ApiClient(api.configuration()) as admin:
        await client.CoreV1Api(admin).create_namespaced_service("default", service("web"))
    await api.restart()
    assert (api.url, api.ca_pem, api.serving) == (url, ca, True)
    async with ApiClient(api.configuration(READER_TOKEN)) as reader:
        listed = await client.CoreV1Api(reader).list_namespaced_service("default")
        assert [item.metadata.name for item in listed.items] == ["web"]
        with pytest.raises(ApiException) as denied:
            await client.CoreV1Api(reader).delete_namespaced_service("web", "default")
        assert denied.value.status == 403


async def test_a_stopped_server_refuses_connections_until_it_starts_again(
    api: ApiEmulator,
) -> None:
    async with ApiClient(api.configuration()) as admin:
        core = client.CoreV1Api(admin)
        await api.stop()
        assert not api.serving
        with pytest.raises(aiohttp.ClientConnectionError):
            await core.list_namespaced_service("default")
        await api.start()
        assert (await core.list_namespaced_service("default")).items == []


async def test_a_restart_cuts_open_watches_and_a_resumed_watch_sees_what_changed_meanwhile(
    api: ApiEmulator,
) -> None:
    async with ApiClient(api.configuration()) as admin:
        core = client.CoreV1Api(admin)
        listed = await core.list_namespaced_service("default")
        watcher = watch.Watch()
        stream = watcher.stream(core.list_namespaced_service, "default",
                                resource_version=listed.metadata.resource_version,
                                timeout_seconds=30)
        await core.create_namespaced_service("default", service("before"))
        first = await stream.__anext__()
        seen = first["object"].metadata.resource_version
        await api.stop()
        with anyio.fail_after(5), pytest.raises(aiohttp.ClientError):
            await stream.__anext__()
        await watcher.close()
        await api.start()
        await core.create_namespaced_service("default", service("after"))
        resumed = watch.Watch()
        events = resumed.stream(core.list_namespaced_service, "default",
                                resource_version=seen, timeout_seconds=30)
        try:
            with anyio.fail_after(5):
                event = await events.__anext__()
            assert (event["type"], event["object"].metadata.name) == ("ADDED", "after")
        finally:
            await resumed.close()


async def test_a_restart_that_loses_the_history_answers_a_resumed_watch_410_expired(
    api: ApiEmulator,
) -> None:
    async with ApiClient(api.configuration()) as admin:
        core = client.CoreV1Api(admin)
        before = await core.create_namespaced_service("default", service("before"))
        await core.create_namespaced_service("default", service("later"))
        await api.restart(lose_history=True)
        watcher = watch.Watch()
        stream = watcher.stream(core.list_namespaced_service, "default",
                                resource_version=before.metadata.resource_version,
                                timeout_seconds=5)
        try:
            with anyio.fail_after(5), pytest.raises(ApiException) as gone:
                await stream.__anext__()
            assert gone.value.status == 410
        finally:
            await watcher.close()


class _Changes:
    """What an informer reports, with a way to wait for a condition on it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.restarts = 0
        self.watches = 0
        self._tick = anyio.Event()

    def on_request(self, verb: str, status: int) -> None:
        self.watches += (verb, status) == ("watch", 200)
        self._ticked()

    def on_change(self, event_type: str, obj: Obj) -> None:
        self.seen.append((event_type, obj["metadata"]["name"]))
        self._ticked()

    def on_restart(self) -> None:
        self.restarts += 1
        self._ticked()

    def _ticked(self) -> None:
        self._tick.set()
        self._tick = anyio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(15):
            while not condition():
                await self._tick.wait()


@pytest.mark.parametrize("lose_history", [False, True])
async def test_an_informer_reconnects_after_a_restart_and_misses_nothing(
    api: ApiEmulator, lose_history: bool,
) -> None:
    changes = _Changes()
    async with KubeClient(api.configuration(), request_timeout=5,
                          on_request=changes.on_request) as kube:
        await kube.create(SERVICE, "default", service("stays"))
        await kube.create(SERVICE, "default", service("goes"))
        informer = Informer(kube, SERVICE, namespaces=None, on_change=changes.on_change,
                            on_restart=changes.on_restart, min_backoff=0.2)
        async with anyio.create_task_group() as tg:
            await tg.start(informer.run)
            await changes.until(lambda: changes.watches >= 1)
            await api.stop(lose_history=lose_history)
            services = api.store.registry.lookup("", "v1", "services")
            assert services is not None
            api.store.delete(services, "default", "goes")  # written while it was down
            await api.start()
            await kube.create(SERVICE, "default", service("new"))
            await changes.until(lambda: {("DELETED", "goes"), ("ADDED", "new")}
                                <= set(changes.seen))
            assert sorted(o["metadata"]["name"] for o in informer.items()) == ["new", "stays"]
            assert changes.restarts >= 1
            tg.cancel_scope.cancel()


async def test_the_fake_kubelet_rides_out_a_restart_with_a_status_write_due_meanwhile(
    api: ApiEmulator,
) -> None:
    replica_set = {
        "metadata": {"name": "web-1", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
    }
    async with ApiClient(api.configuration()) as admin:
        apps = client.AppsV1Api(admin)
        kubelet = FakeKubelet(admin, namespaces=["default"], ready_after=1.5)
        async with anyio.create_task_group() as tg:
            await tg.start(kubelet.run)
            await apps.create_namespaced_replica_set("default", replica_set)
            # down (for good, after at most 1 s of shutdown) when the kubelet's write is due,
            # 1.5 s after it saw the ReplicaSet
            await api.restart(downtime=3.0)
            await until_ready(apps)
            tg.cancel_scope.cancel()


async def until_ready(apps: client.AppsV1Api) -> None:
    """Poll the API under a deadline until both replicas are ready."""
    with anyio.fail_after(15):
        while True:
            stored = await apps.read_namespaced_replica_set("web-1", "default")
            if stored.status.ready_replicas == 2:
                return
            await anyio.sleep(0.05)
