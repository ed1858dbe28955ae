"""Which API server serves each kind: the main cluster's, or another one for some kinds.

With a mesh whose control plane is a separate cluster (Alibaba ASM, Flagger's
``-kubeconfig-service-mesh``), Istio's VirtualServices and DestinationRules live on the mesh
cluster's API server and everything else on the main one. ``ApiServers`` maps each kind to
the client of the server that holds it, and forwards to that client the calls the caches
make (list, watch, discovery) and those the traffic routers make (patch; create and replace
for a router that makes its own objects), so neither needs to know how many clusters there
are. Built once by the composition root; with a single cluster the caches and the routers
get the main ``KubeClient`` as is, and only ``probe`` runs.

Clients are not shared: each server has its own connections, rate limit and credentials. No
object written on one refers to an object of the other: owner references never cross, so an
object created, replaced or applied (a merge or apply patch) on a server other than the main
one leaves here without them (a uid of the main cluster would make the other cluster's
garbage collector delete it).

A write to a server other than the main one that is known not to answer (``answering``: its
last request got no HTTP answer) fails at once with ``CannotConnect`` instead of waiting out
its timeout: behind a network partition every such write would otherwise hold a worker for
the whole request timeout, and Rollouts that do not need that server would wait for workers.
``probe`` (a background task) asks each server that did not answer, every second, whether it
does now; writes resume as soon as one does. (The informers' long-lived watches would not
notice a server that came back, or a single request lost on a stale connection, for minutes.)
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from shiftd.kube.client import JsonObject, KubeClient, PatchType, WatchEvent
from shiftd.kube.errors import CannotConnect, KubeError
from shiftd.kube.resources import ResourceKind

__all__ = ["ApiServer", "ApiServers"]


@dataclass(frozen=True, slots=True)
class ApiServer:
    """One API server the daemon talks to: a name for logs and /readyz, and its client."""

    name: str  # "main", "mesh"
    client: KubeClient


class ApiServers:
    """The main server, plus the kinds some other server holds."""

    def __init__(self, main: ApiServer,
                 elsewhere: Iterable[tuple[ApiServer, Iterable[ResourceKind]]] = (), *,
                 answering: Callable[[str], bool] = lambda name: True) -> None:
        self.main = main
        self._answering = answering
        self._by_plural: dict[str, ApiServer] = {}
        self._kinds: dict[str, ResourceKind] = {}
        for server, kinds in elsewhere:
            for kind in kinds:
                self._by_plural[kind.plural] = server
                self._kinds[kind.plural] = kind

    async def probe(self, *, main_kind: ResourceKind, interval: float = 1.0) -> None:
        """Forever, every ``interval`` s: ask each server not answering (``answering``)
        whether it does now, with a discovery request for one of its kinds (``main_kind``
        for the main one); any HTTP answer reaches ``answering`` through the client's
        request hook. Each server is probed in its own task, so one behind a partition (a
        request timing out) does not delay the others."""
        probes = {id(self.main): (self.main, main_kind)}
        for plural, server in self._by_plural.items():
            probes.setdefault(id(server), (server, self._kinds[plural]))
        async with anyio.create_task_group() as group:
            for server, kind in probes.values():
                group.start_soon(functools.partial(self._probe_one, server, kind,
                                                   interval=interval))

    async def _probe_one(self, server: ApiServer, kind: ResourceKind, *,
                         interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            if not self._answering(server.name):
                # still not answering: the request hook has recorded it
                with contextlib.suppress(KubeError):
                    await server.client.serves(kind)

    def server_for(self, kind: ResourceKind) -> ApiServer:
        return self._by_plural.get(kind.plural, self.main)

    def client_for(self, kind: ResourceKind) -> KubeClient:
        return self.server_for(kind).client

    # -- what the caches call (``ListWatchClient``, discovery) ------------------------------
    async def list(self, kind: ResourceKind, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[JsonObject], str]:
        return await self.client_for(kind).list(kind, namespace, label_selector=label_selector,
                                                field_selector=field_selector)

    def watch(self, kind: ResourceKind, namespace: str | None = None, *, resource_version: str,
              label_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        return self.client_for(kind).watch(
            kind, namespace, resource_version=resource_version, label_selector=label_selector,
            timeout_seconds=timeout_seconds, allow_bookmarks=allow_bookmarks)

    async def serves(self, kind: ResourceKind) -> bool:
        return await self.client_for(kind).serves(kind)

    # -- what the traffic routers call (``ObjectWriter``) ------------------------------------
    async def create(self, kind: ResourceKind, namespace: str | None,
                     body: JsonObject) -> JsonObject:
        return await self._writer(kind).create(kind, namespace, self._local(kind, body))

    async def replace(self, kind: ResourceKind, namespace: str | None, name: str,
                      body: JsonObject) -> JsonObject:
        return await self._writer(kind).replace(kind, namespace, name, self._local(kind, body))

    def _writer(self, kind: ResourceKind) -> KubeClient:
        """The client to write ``kind`` with, unless its server (not the main) is known not
        to answer: then ``CannotConnect`` at once."""
        server = self.server_for(kind)
        if server is not self.main and not self._answering(server.name):
            raise CannotConnect(f"the {server.name} API server is unreachable: {kind.plural} "
                                f"are written once it answers again")
        return server.client

    def _local(self, kind: ResourceKind, body: JsonObject) -> JsonObject:
        """``body`` without owner references when it goes to a server other than the main."""
        if self.server_for(kind) is self.main or not (body.get("metadata") or {}).get(
                "ownerReferences"):
            return body
        stripped = copy.copy(body)
        stripped["metadata"] = {key: value for key, value in body["metadata"].items()
                                if key != "ownerReferences"}
        return stripped

    async def patch(self, kind: ResourceKind, namespace: str | None, name: str, patch: Any, *,
                    patch_type: PatchType, subresource: str | None = None) -> JsonObject:
        if patch_type in ("merge", "apply") and isinstance(patch, dict):
            patch = self._local(kind, patch)
        return await self._writer(kind).patch(kind, namespace, name, patch,
                                              patch_type=patch_type, subresource=subresource)
