"""Informer and EventRecorder against the API emulator: sync, resume, relist, server restarts.

Waiting is done on the informer's own callbacks under a deadline, never by sleeping.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client import Configuration

from shiftd.kube.client import KubeClient
from shiftd.kube.events import EventRecorder
from shiftd.kube.informer import Informer
from shiftd.kube.resources import EVENT, NAMESPACE, ROLLOUT
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
def watcher() -> Watcher:
    return Watcher()


@pytest.fixture
async def kube(api: ApiEmulator, watcher: Watcher) -> AsyncIterator[KubeClient]:
    async with KubeClient(
        api.configuration(), qps=200, burst=200, on_request=watcher.on_request
    ) as client:
        yield client


def rollout(name: str, namespace: str = "default") -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }


class Watcher:
    """Collects what an informer reports and lets a test wait for it."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.restarts = 0
        self.requests: list[tuple[str, int]] = []
        self._tick = anyio.Event()

    def on_change(self, event_type: str, obj: Obj) -> None:
        self.changes.append((event_type, obj["metadata"]["name"]))
        self._ticked()

    def on_request(self, verb: str, status: int) -> None:
        self.requests.append((verb, status))
        self._ticked()

    async def watching(self, count: int = 1) -> None:
        """Until ``count`` watches have been established (the server has subscribed them)."""
        await self.until(lambda: self.requests.count(("watch", 200)) >= count)

    def on_restart(self) -> None:
        self.restarts += 1
        self._ticked()

    def _ticked(self) -> None:
        self._tick.set()
        self._tick = anyio.Event()

    async def until(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        with anyio.fail_after(within):
            while not condition():
                await self._tick.wait()

    async def saw(self, *changes: tuple[str, str], within: float = 10.0) -> None:
        await self.until(lambda: all(c in self.changes for c in changes), within=within)

    def informer(self, client: KubeClient, **options: Any) -> Informer:
        options.setdefault("namespaces", None)
        return Informer(
            client, ROLLOUT, on_change=self.on_change, on_restart=self.on_restart, **options
        )


def rollout_lists(api: ApiEmulator) -> int:
    return sum(
        1
        for r in api.request_log
        if r.method == "GET" and r.path.endswith("/rollouts") and not r.watch
    )


async def test_the_informer_syncs_existing_objects_then_follows_every_change(
    kube: KubeClient, watcher: Watcher
) -> None:
    await kube.create(ROLLOUT, "default", rollout("before"))
    informer = watcher.informer(kube)
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        assert informer.synced.is_set()
        assert watcher.changes == [("ADDED", "before")]
        assert informer.get("default", "before") is not None

        await kube.create(ROLLOUT, "default", rollout("after"))
        await kube.patch(
            ROLLOUT, "default", "before", {"spec": {"replicas": 3}}, patch_type="merge"
        )
        await kube.delete(ROLLOUT, "default", "after")
        await watcher.saw(("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after"))
        cached = informer.get("default", "before")
        assert cached is not None and cached["spec"]["replicas"] == 3
        assert cached["kind"] == "Rollout"
        assert informer.get("default", "after") is None
        assert watcher.restarts == 0
        tg.cancel_scope.cancel()


async def test_an_informer_of_some_namespaces_sees_only_those(
    api: ApiEmulator, kube: KubeClient, watcher: Watcher
) -> None:
    for namespace in ("team-a", "team-b"):
        await kube.create(
            NAMESPACE,
            None,
            {"metadata": {"name": namespace}},
        )
    await kube.create(ROLLOUT, "team-a", rollout("a1", "team-a"))
    await kube.create(ROLLOUT, "team-b", rollout("b1", "team-b"))
    informer = watcher.informer(kube, namespaces=["team-a", "default"])
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await kube.create(ROLLOUT, "team-b", rollout("b2", "team-b"))
        await kube.create(ROLLOUT, "default", rollout("d1"))
        await watcher.saw(("ADDED", "d1"))
        assert sorted(watcher.changes) == [("ADDED", "a1"), ("ADDED", "d1")]
        assert [o["metadata"]["name"] for o in informer.items("team-a")] == ["a1"]
        assert informer.items("team-b") == []
        tg.cancel_scope.cancel()


async def test_after_watches_are_dropped_it_resumes_without_missing_a_change_made_meanwhile(
    api: ApiEmulator, kube: KubeClient, watcher: Watcher
) -> None:
    await kube.create(ROLLOUT, "default", rollout("a"))
    # The back-off after a broken watch leaves time to write while it is disconnected.
    informer = watcher.informer(kube, min_backoff=0.5)
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await watcher.watching()
        api.drop_watches()
        await kube.create(ROLLOUT, "default", rollout("made-while-disconnected"))
        await watcher.saw(("ADDED", "made-while-disconnected"))
        assert watcher.restarts == 1
        assert rollout_lists(api) == 1  # resumed, not relisted
        tg.cancel_scope.cancel()


async def test_after_compaction_a_dropped_watch_relists_and_reports_what_vanished(
    api: ApiEmulator, kube: KubeClient, watcher: Watcher
) -> None:
    for name in ("stays", "goes"):
        await kube.create(ROLLOUT, "default", rollout(name))
    informer = watcher.informer(kube, min_backoff=0.5)
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await watcher.watching()
        api.drop_watches()
        await kube.delete(ROLLOUT, "default", "goes")
        await kube.create(ROLLOUT, "default", rollout("new"))
        api.compact()
        await watcher.saw(("DELETED", "goes"), ("ADDED", "new"))
        assert sorted(o["metadata"]["name"] for o in informer.items()) == ["new", "stays"]
        assert rollout_lists(api) == 2
        assert watcher.restarts == 2  # the broken watch, then the 410
        tg.cancel_scope.cancel()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_informer_survives_the_api_server_restarting_on_the_same_port(
    crd_documents: list[Obj],
) -> None:
    port = free_port()
    watcher = Watcher()
    configuration = Configuration(host=f"http://127.0.0.1:{port}")
    async with (
        KubeClient(configuration, request_timeout=5) as kube,
        anyio.create_task_group() as tg,
    ):
        informer = watcher.informer(kube, min_backoff=0.05, max_backoff=0.3)
        async with ApiEmulator(crds=crd_documents, port=port, bookmark_interval=0.05):
            await kube.create(ROLLOUT, "default", rollout("lost-in-restart"))
            await tg.start(informer.run)
        await watcher.until(lambda: watcher.restarts >= 2)  # down, and still trying

        async with ApiEmulator(crds=crd_documents, port=port, bookmark_interval=0.05):
            await watcher.saw(("DELETED", "lost-in-restart"))
            await kube.create(ROLLOUT, "default", rollout("after-restart"))
            await watcher.saw(("ADDED", "after-restart"))
            assert [o["metadata"]["name"] for o in informer.items()] == ["after-restart"]
            tg.cancel_scope.cancel()


async def test_recorded_events_land_in_the_api_and_repeats_are_counted(
    kube: KubeClient,
) -> None:
    created = await kube.create(ROLLOUT, "default", rollout("web"))
    recorder = EventRecorder(kube)
    for _ in range(3):
        await recorder.record(created, type="Warning", reason="Degraded", message="no pods")
    await recorder.record(created, type="Normal", reason="Promoted", message="step 2/2")
    events, _ = await kube.list(EVENT, "default")
    summary = sorted(
        (e["reason"], e["count"], e["involvedObject"]["name"], e["source"]["component"])
        for e in events
    )
    assert summary == [("Degraded", 3, "web", "shiftd"), ("Promoted", 1, "web", "shiftd")]
