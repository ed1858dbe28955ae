"""Caches: the owner index (a Rollout finds the AnalysisRuns it controls), the reference
index, handlers returning keys, and optional kinds the API server does not serve.

The watch side is a scripted client: ``list`` answers from a table, and each kind's watch
yields the events a test sends through a memory stream, so the index is fed exactly as the
informers feed it (initial list, ADDED/MODIFIED/DELETED) and by write-through
(``remember``/``forget``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from shiftd.kube.client import WatchEvent
from shiftd.kube.errors import ApiError
from shiftd.kube.resources import ANALYSIS_RUN, CANARY, DEPLOYMENT, VIRTUAL_SERVICE, ResourceKind
from shiftd.runtime.caches import Caches
from shiftd.runtime.keys import ObjectKey, key_of

Obj = dict[str, Any]


def run(name: str, owner: str | None, version: int, namespace: str = "shop") -> Obj:
    metadata: Obj = {"name": name, "namespace": namespace, "resourceVersion": str(version)}
    if owner is not None:
        metadata["ownerReferences"] = [{"kind": "Rollout", "name": owner, "uid": f"uid-{owner}",
                                        "controller": True}]
    return {"metadata": metadata}


class ScriptedClient:
    def __init__(self, runs: list[Obj]) -> None:
        self._runs = runs
        self.send, self.receive = anyio.create_memory_object_stream[WatchEvent](100)

    async def list(self, kind: ResourceKind, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        return (list(self._runs) if kind is ANALYSIS_RUN else []), "1"

    async def watch(self, kind: ResourceKind, namespace: str | None = None, *,
                    resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        if kind is not ANALYSIS_RUN:
            await anyio.sleep_forever()
        receive: MemoryObjectReceiveStream[WatchEvent] = self.receive
        async for event in receive:
            yield event


Events = MemoryObjectSendStream[WatchEvent]


@asynccontextmanager
async def running(runs: list[Obj]) -> AsyncIterator[tuple[Caches, Events]]:
    client = ScriptedClient(runs)
    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None)
    caches.watch(ANALYSIS_RUN, index_owners=True)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        yield caches, client.send
        group.cancel_scope.cancel()


def names(caches: Caches, owner: str, namespace: str = "shop") -> list[str]:
    return [r["metadata"]["name"]
            for r in caches.owned(ANALYSIS_RUN, namespace=namespace, uid=f"uid-{owner}")]


async def settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


async def test_runs_are_found_by_their_controlling_rollout() -> None:
    async with running([run("a-1", "a", 1), run("b-1", "b", 2), run("orphan", None, 3)]) \
            as (caches, events):
        assert names(caches, "a") == ["a-1"]
        assert names(caches, "b") == ["b-1"]
        assert names(caches, "c") == []
        assert names(caches, "a", namespace="other") == []

        await events.send(WatchEvent(type="ADDED", object=run("a-2", "a", 4)))
        await settle()
        assert names(caches, "a") == ["a-1", "a-2"]

        # The index returns the informer's newest copy.
        await events.send(WatchEvent(type="MODIFIED", object={
            **run("a-2", "a", 5), "status": {"phase": "Running"}}))
        await settle()
        (newest,) = [r for r in caches.owned(ANALYSIS_RUN, namespace="shop", uid="uid-a")
                     if r["metadata"]["name"] == "a-2"]
        assert newest["status"] == {"phase": "Running"}

        await events.send(WatchEvent(type="DELETED", object=run("a-1", "a", 6)))
        await settle()
        assert names(caches, "a") == ["a-2"]

        # An orphan adopted (owner reference added) moves into its owner's runs.
        await events.send(WatchEvent(type="MODIFIED", object=run("orphan", "b", 7)))
        await settle()
        assert names(caches, "b") == ["b-1", "orphan"]


async def test_write_through_updates_the_index() -> None:
    async with running([]) as (caches, _):
        caches.remember(ANALYSIS_RUN, run("a-1", "a", 1))
        assert names(caches, "a") == ["a-1"]
        caches.forget(ANALYSIS_RUN, "shop", "a-1")
        assert names(caches, "a") == []


async def test_a_write_answer_from_the_client_is_cached_and_indexed_if_its_kind_is_cached(
) -> None:
    async with running([]) as (caches, _):
        caches.remember_answer(ANALYSIS_RUN, run("a-1", "a", 3))
        caches.remember_answer(CANARY, run("c", None, 4))  # not a cached kind: ignored
        assert names(caches, "a") == ["a-1"]
        cached = caches.get(ANALYSIS_RUN, "shop", "a-1")
        assert caches.holding(ANALYSIS_RUN, "shop", "a-1", "3") is cached is not None
        assert caches.holding(ANALYSIS_RUN, "shop", "a-1", "2") is None
        assert caches.holding(CANARY, "shop", "c", "4") is None


async def test_changes_wake_the_keys_handlers_name_and_every_key_that_references_the_object(
) -> None:
    client = ScriptedClient([run("a-1", "a", 1)])
    woken: list[ObjectKey] = []
    caches = Caches(client, namespaces=["shop"], enqueue=woken.append)
    caches.watch(ANALYSIS_RUN, on_change=lambda event, obj: (key_of("AnalysisRun", obj),))
    rollout = ObjectKey("Rollout", "shop", "a")
    canary = ObjectKey("Canary", "shop", "a")  # same name, another kind: a different key
    caches.set_references(rollout, [(ANALYSIS_RUN, "shop", "a-2")])
    caches.set_references(canary, [(ANALYSIS_RUN, "shop", "a-2")])
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        assert woken == [ObjectKey("AnalysisRun", "shop", "a-1")]
        await client.send.send(WatchEvent(type="ADDED", object=run("a-2", "a", 2)))
        await settle()
        assert woken[1] == ObjectKey("AnalysisRun", "shop", "a-2")
        assert set(woken[2:]) == {rollout, canary}
        caches.set_references(rollout, ())
        del woken[:]
        await client.send.send(WatchEvent(type="MODIFIED", object=run("a-2", "a", 3)))
        await settle()
        assert set(woken) == {ObjectKey("AnalysisRun", "shop", "a-2"), canary}
        group.cancel_scope.cancel()


async def test_an_optional_kind_the_server_does_not_serve_leaves_the_caches_ready() -> None:
    client = ScriptedClient([])
    asked: list[str] = []

    async def serves(kind: ResourceKind) -> bool:
        asked.append(kind.plural)
        return kind is not VIRTUAL_SERVICE

    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None, serves=serves)
    caches.watch(ANALYSIS_RUN)
    caches.watch(VIRTUAL_SERVICE, optional=True)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        assert caches.synced
        await settle()
        assert asked == ["virtualservices"]
        assert not caches.served(VIRTUAL_SERVICE)
        assert caches.served(ANALYSIS_RUN)
        assert caches.get(VIRTUAL_SERVICE, "shop", "anything") is None
        group.cancel_scope.cancel()


async def test_a_failed_discovery_counts_the_kind_as_served_and_watches_it() -> None:
    client = ScriptedClient([])

    async def serves(kind: ResourceKind) -> bool:
        raise ApiError(403, "Forbidden", "discovery is forbidden")

    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None, serves=serves)
    caches.watch(VIRTUAL_SERVICE, optional=True)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        await settle()
        assert caches.served(VIRTUAL_SERVICE)
        group.cancel_scope.cancel()


async def test_a_kind_that_requires_an_unserved_kind_is_not_watched() -> None:
    client = ScriptedClient([])
    asked: list[str] = []

    async def serves(kind: ResourceKind) -> bool:
        asked.append(kind.plural)
        return kind is not CANARY

    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None, serves=serves)
    caches.watch(DEPLOYMENT, optional=True, requires=CANARY)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        await settle()
        assert asked == ["deployments", "canaries"]
        assert not caches.served(DEPLOYMENT)
        group.cancel_scope.cancel()


async def test_a_kind_asked_for_without_a_requirement_is_watched_anyway() -> None:
    client = ScriptedClient([])
    asked: list[str] = []

    async def serves(kind: ResourceKind) -> bool:
        asked.append(kind.plural)
        return kind is not CANARY

    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None, serves=serves)
    caches.watch(DEPLOYMENT, optional=True, requires=CANARY)
    caches.watch(DEPLOYMENT, optional=True)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        await settle()
        assert asked == ["deployments"]
        assert caches.served(DEPLOYMENT)
        group.cancel_scope.cancel()


async def test_a_kind_counts_as_listed_once_its_first_list_arrived() -> None:
    client = ScriptedClient([run("a-1", "shop-rollout", 1)])
    caches = Caches(client, namespaces=["shop"], enqueue=lambda key: None)
    caches.watch(ANALYSIS_RUN)
    assert not caches.listed(ANALYSIS_RUN) and not caches.listed(DEPLOYMENT)
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        assert caches.listed(ANALYSIS_RUN)
        group.cancel_scope.cancel()
class NoWatches:
    """A client the tests never let the caches call (nothing is run)."""

    async def list(self, kind: ResourceKind, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        raise AssertionError("not listed")

    def watch(self, kind: ResourceKind, namespace: str | None = None, *,
              resource_version: str, label_selector: str | None = None,
              timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        raise AssertionError("not watched")


def selector_only(obj: Obj) -> Obj:
    obj["spec"] = {"selector": obj["spec"]["selector"]}
    return obj


def service(version: int) -> Obj:
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": str(version),
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.1"}}


async def test_a_kind_registered_with_keep_is_cached_as_kept_and_stripped() -> None:
    caches = Caches(NoWatches(), namespaces=None, enqueue=lambda key: None)
    caches.watch(ANALYSIS_RUN, keep=selector_only)
    caches.remember(ANALYSIS_RUN, service(1))
    assert caches.get(ANALYSIS_RUN, "shop", "web") == {
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"selector": {"app": "web"}}}


async def test_a_second_registration_reading_everything_keeps_the_whole_object() -> None:
    caches = Caches(NoWatches(), namespaces=None, enqueue=lambda key: None)
    caches.watch(ANALYSIS_RUN, keep=selector_only)
    caches.watch(ANALYSIS_RUN)
    caches.remember(ANALYSIS_RUN, service(1))
    cached = caches.get(ANALYSIS_RUN, "shop", "web")
    assert cached is not None and cached["spec"]["clusterIP"] == "10.0.0.1"


async def test_an_object_wakes_exactly_the_keys_that_reference_it_as_they_come_and_go() -> None:
    client = ScriptedClient([])
    woken: list[ObjectKey] = []
    caches = Caches(client, namespaces=["shop"], enqueue=woken.append)
    caches.watch(ANALYSIS_RUN)
    first, second, third = (ObjectKey("Rollout", "shop", name) for name in "abc")
    ref, other = (ANALYSIS_RUN, "shop", "a-1"), (ANALYSIS_RUN, "shop", "other")

    async def woken_by_a_change(version: int) -> set[ObjectKey]:
        del woken[:]
        await client.send.send(WatchEvent(type="MODIFIED", object=run("a-1", "a", version)))
        await settle()
        return set(woken)

    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        caches.set_references(first, [other, ref])
        assert await woken_by_a_change(1) == {first}
        caches.set_references(second, [ref])
        caches.set_references(third, [ref])
        assert await woken_by_a_change(2) == {first, second, third}
        caches.set_references(second, [])
        caches.set_references(third, [other])
        assert await woken_by_a_change(3) == {first}
        assert caches.references(first) == (ref, other)  # sorted, whatever the order given
        assert caches.references(second) == ()
        caches.set_references(first, [other])
        assert await woken_by_a_change(4) == set()
        caches.set_references(second, [ref])
        assert await woken_by_a_change(5) == {second}
        group.cancel_scope.cancel()


async def test_cached_objects_hold_equal_parts_once_while_two_objects_use_them() -> None:
    caches = Caches(NoWatches(), namespaces=None, enqueue=lambda key: None)
    caches.watch(ANALYSIS_RUN, index_owners=True)
    caches.remember(ANALYSIS_RUN, run("a-1", "a", 1))
    caches.remember(ANALYSIS_RUN, run("a-2", "a", 2))
    one, other = (caches.get(ANALYSIS_RUN, "shop", name) for name in ("a-1", "a-2"))
    assert one is not None and other is not None
    assert one["metadata"]["ownerReferences"] is other["metadata"]["ownerReferences"]
    assert one["metadata"]["ownerReferences"] == [
        {"kind": "Rollout", "name": "a", "uid": "uid-a", "controller": True}]

    # the reference in that list is used once (by the list): not held any more
    assert caches.release_unshared() == 1
    assert caches.release_unshared() == 0
    del one, other
    caches.forget(ANALYSIS_RUN, "shop", "a-1")
    assert caches.release_unshared() == 0  # ownerReferences: held while one object has them
    caches.forget(ANALYSIS_RUN, "shop", "a-2")
    assert caches.release_unshared() == 1
