"""Caches: a Rollout finds the AnalysisRuns it controls through the owner index.

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
from shiftd.kube.resources import ANALYSIS_RUN, ResourceKind
from shiftd.runtime.caches import Caches

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
    async with client.send, client.receive, anyio.create_task_group() as group:
        await group.start(caches.run)
        yield caches, client.send
        group.cancel_scope.cancel()


def names(caches: Caches, owner: str, namespace: str = "shop") -> list[str]:
    return [r["metadata"]["name"]
            for r in caches.analysis_runs_for(namespace=namespace, uid=f"uid-{owner}")]


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
        (newest,) = [r for r in caches.analysis_runs_for(namespace="shop", uid="uid-a")
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
