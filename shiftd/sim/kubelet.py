"""``FakeKubelet``: plays the ReplicaSet controller and the kubelet for tests and the demo.

It watches ReplicaSets over HTTP with kubernetes_asyncio, so it works the same against the
emulator and a real API server (where nothing runs the pods and readiness is faked by patching
``replicasets/status``). ``ready_after`` seconds after a ReplicaSet's ``spec.replicas`` grows,
its status reports every replica ready; a scale-down shows at once. ``hold`` keeps a
ReplicaSet's pods unready until ``release``, so tests can check that traffic never reaches
unready pods. With ``create_pods`` it also keeps matching Pod objects, named like the real
controller's (``<replicaset>-<5 chars>``), each ready ``ready_after`` seconds after it was
created (the ReplicaSet's status counts them); a pod deleted or evicted by someone else is
replaced by a new one, as the ReplicaSet controller does.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
import orjson
from anyio.abc import TaskStatus
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_STATUS_FIELDS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                  "observedGeneration")


@dataclass(slots=True)
class _ReplicaSet:
    """What the fake kubelet knows of one ReplicaSet."""

    namespace: str
    name: str
    uid: str
    replicas: int  # spec.replicas
    generation: int
    changed_at: float  # anyio time when spec.replicas last changed
    status: Obj
    template: Obj
    pods: dict[str, bool] = field(default_factory=dict)  # pod name -> reported ready
    born: dict[str, float] = field(default_factory=dict)  # pod name -> anyio time created


class _Http:
    """Raw JSON calls through a kubernetes_asyncio ``ApiClient`` (its auth, TLS and pool)."""

    def __init__(self, api_client: ApiClient) -> None:
        self._client = api_client

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> Obj:
        result = await self._client.call_api(
            path, method, query_params=list(query),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body, response_types_map={200: "object", 201: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True,
        )
        return result if isinstance(result, dict) else {}

    @asynccontextmanager
    async def watch(self, path: str, query: Sequence[tuple[str, str]]) -> AsyncIterator[
        AsyncIterator[Obj]
    ]:
        response: aiohttp.ClientResponse = await self._client.call_api(
            path, "GET", query_params=[("watch", "true"), *query],
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
            _preload_content=False,
        )
        try:
            if response.status >= 400:
                raise ApiException(status=response.status, reason=await response.text())

            async def events() -> AsyncIterator[Obj]:
                async for line in response.content:
                    if line.strip():
                        yield orjson.loads(line)

            yield events()
        finally:
            response.release()


class FakeKubelet:
    """Makes ReplicaSets in ``namespaces`` report ready pods ``ready_after`` seconds after
    they scale up; start ``run`` in a task group (``await tg.start(kubelet.run)``)."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespaces: Sequence[str],
        ready_after: float = 0.0,
        create_pods: bool = False,
        retry_after: float = 0.5,
    ) -> None:
        self._http = _Http(api_client)
        self._namespaces = tuple(namespaces)
        self._ready_after = ready_after
        self._create_pods = create_pods
        self._retry_after = retry_after
        self._sets: dict[tuple[str, str], _ReplicaSet] = {}
        self._held: set[tuple[str, str]] = set()
        # Set whenever something may change a desired status; created in ``run`` because an
        # anyio Event needs a running event loop.
        self._wake: anyio.Event | None = None
        # What the next pass looks at: the ReplicaSets something happened to (``None``: all of
        # them), plus those due to change by then (``_due``: when each next changes). A pass
        # over every ReplicaSet at each event made thousands of them quadratic.
        self._dirty: set[tuple[str, str]] | None = None
        self._due: dict[tuple[str, str], float] = {}

    @property
    def ready_after(self) -> float:
        return self._ready_after

    @ready_after.setter
    def ready_after(self, seconds: float) -> None:
        self._ready_after = seconds
        self._poke()

    def _poke(self, key: tuple[str, str] | None = None) -> None:
        """Something changed for ReplicaSet ``key`` (``None``: for any of them)."""
        if key is None:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.add(key)
        if self._wake is not None:
            self._wake.set()

    # --- test controls -----------------------------------------------------------------------

    def hold(self, namespace: str, name: str) -> None:
        """Keep this ReplicaSet's pods unready (readyReplicas 0) until ``release``; the name
        ``*`` holds every ReplicaSet of the namespace, present and future."""
        self._held.add((namespace, name))
        self._poke()

    def release(self, namespace: str, name: str) -> None:
        """Let a held ReplicaSet become ready again (once ``ready_after`` has passed)."""
        self._held.discard((namespace, name))
        self._poke()

    # --- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch and mark ReplicaSets ready until cancelled; started once every namespace is
        listed."""
        async with anyio.create_task_group() as tg:
            for namespace in self._namespaces:
                await tg.start(self._watch_namespace, namespace)
                if self._create_pods:
                    await tg.start(self._watch_pods, namespace)
            task_status.started()
            await self._reconcile_forever()

    async def _watch_namespace(
        self, namespace: str, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        path = f"/apis/apps/v1/namespaces/{quote(namespace)}/replicasets"
        await self._watch(path, namespace, task_status=task_status,
                          replace=self._replace_namespace, observe=self._observe,
                          forget=self._forget)

    async def _watch_pods(
        self, namespace: str, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Pods deleted by others (an eviction) are noticed, so they are replaced."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods"
        await self._watch(path, namespace, task_status=task_status,
                          replace=lambda namespace, items: None, observe=lambda obj: None,
                          forget=self._pod_gone)

    async def _watch(
        self, path: str, namespace: str, *, task_status: TaskStatus[None],
        replace: Callable[[str, list[Obj]], None], observe: Callable[[Obj], None],
        forget: Callable[[Obj], None],
    ) -> None:
        started = False
        version: str | None = None
        while True:
            try:
                if version is None:
                    listed = await self._http.call("GET", path)
                    replace(namespace, listed.get("items") or [])
                    version = (listed.get("metadata") or {}).get("resourceVersion", "")
                    if not started:
                        task_status.started()
                        started = True
                version = await self._follow(path, version, observe=observe, forget=forget)
            except ApiException as error:
                if error.status != 410:
                    logger.warning("fake kubelet: watching %s failed: %s", path, error)
                    await anyio.sleep(self._retry_after)  # back off before retrying
                version = None
            except (aiohttp.ClientError, OSError) as error:
                logger.info("fake kubelet: watch on %s broke (%s); resuming", path, error)
                await anyio.sleep(self._retry_after)  # back off before reconnecting

    async def _follow(self, path: str, version: str, *, observe: Callable[[Obj], None],
                      forget: Callable[[Obj], None]) -> str | None:
        """Follow one watch; returns the version to resume from (``None``: relist)."""
        query = [("resourceVersion", version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", "300")]
        async with self._http.watch(path, query) as events:
            async for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED"):
                    observe(obj)
                elif kind == "DELETED":
                    forget(obj)
        return version

    def _replace_namespace(self, namespace: str, items: list[Obj]) -> None:
        names = {item["metadata"]["name"] for item in items}
        for key in [key for key in self._sets if key[0] == namespace and key[1] not in names]:
            del self._sets[key]
        for item in items:
            self._observe({**item, "metadata": {**item["metadata"], "namespace": namespace}})

    def _observe(self, obj: Obj) -> None:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        key = (meta.get("namespace", ""), meta["name"])
        replicas = int(spec.get("replicas", 1))
        known = self._sets.get(key)
        if known is None or known.uid != meta.get("uid"):
            known = _ReplicaSet(
                namespace=key[0], name=key[1], uid=meta.get("uid", ""), replicas=replicas,
                generation=int(meta.get("generation", 1)), changed_at=anyio.current_time(),
                status=dict(obj.get("status") or {}), template=spec.get("template") or {},
            )
            self._sets[key] = known
        elif known.replicas != replicas:
            known.replicas = replicas
            known.changed_at = anyio.current_time()
        known.generation = int(meta.get("generation", known.generation))
        known.status = dict(obj.get("status") or {})
        known.template = spec.get("template") or known.template
        self._poke(key)

    def _forget(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self._sets.pop((meta.get("namespace", ""), meta.get("name", "")), None)

    def _is_held(self, state: _ReplicaSet) -> bool:
        return bool({(state.namespace, state.name), (state.namespace, "*")} & self._held)

    def _desired_status(self, state: _ReplicaSet, now: float) -> tuple[Obj, float]:
        """The status this ReplicaSet should show now, and when that will next change (its
        pods ignored: without ``create_pods``, all become ready together)."""
        due = state.changed_at + self.ready_after
        if self._is_held(state):
            ready, wake_at = 0, math.inf
        elif now >= due:
            ready, wake_at = state.replicas, math.inf
        else:
            ready = min(int(state.status.get("readyReplicas") or 0), state.replicas)
            wake_at = due
        return self._status(state, ready), wake_at

    @staticmethod
    def _status(state: _ReplicaSet, ready: int) -> Obj:
        return {
            "replicas": state.replicas,
            "fullyLabeledReplicas": state.replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": state.generation,
        }

    async def _reconcile_forever(self) -> None:
        while True:
            wake = self._wake = anyio.Event()
            now = anyio.current_time()
            dirty, self._dirty = self._dirty, set()
            keys = list(self._sets) if dirty is None else [
                *dirty, *(key for key, at in self._due.items() if at <= now)]
            for key in dict.fromkeys(keys):
                state = self._sets.get(key)
                next_change = math.inf if state is None else await self._next_change(state, now)
                if next_change < math.inf:
                    self._due[key] = next_change
                else:
                    self._due.pop(key, None)
            wake_at = min(self._due.values(), default=math.inf)
            with anyio.move_on_after(max(0.0, wake_at - anyio.current_time())):
                await wake.wait()

    async def _next_change(self, state: _ReplicaSet, now: float) -> float:
        """Reconcile one ReplicaSet; when it next changes (a failed update is retried)."""
        try:
            return await self._reconcile_one(state, now)
        except ApiException as error:
            if error.status == 404:
                self._sets.pop((state.namespace, state.name), None)
                return math.inf
            logger.warning("fake kubelet: updating %s/%s failed: %s",
                           state.namespace, state.name, error)
            return now + self._retry_after
        except (aiohttp.ClientError, OSError) as error:  # the API server went away
            logger.warning("fake kubelet: updating %s/%s failed: %s",
                           state.namespace, state.name, error)
            return now + self._retry_after

    async def _reconcile_one(self, state: _ReplicaSet, now: float) -> float:
        """One ReplicaSet's pods, then its status (counted from them, as the ReplicaSet
        controller does); returns when it next changes."""
        if self._create_pods:
            ready, wake_at = await self._sync_pods(state, now)
            desired = self._status(state, ready)
        else:
            desired, wake_at = self._desired_status(state, now)
        if any(int(state.status.get(k) or 0) != desired[k] for k in _STATUS_FIELDS):
            await self._patch_status(state, desired)
        return wake_at

    async def _patch_status(self, state: _ReplicaSet, desired: Obj) -> None:
        path = (f"/apis/apps/v1/namespaces/{quote(state.namespace)}/replicasets/"
                f"{quote(state.name)}/status")
        updated = await self._http.call("PATCH", path, body={"status": desired},
                                        content_type=_MERGE_PATCH)
        # Remember what we wrote, so the next pass does not write it again before the watch
        # brings the change back.
        if (updated.get("metadata") or {}).get("uid") == state.uid:
            state.status = dict(updated.get("status") or desired)

    # --- pods --------------------------------------------------------------------------------

    async def _sync_pods(self, state: _ReplicaSet, now: float) -> tuple[int, float]:
        """As many pods as the ReplicaSet asks for, each ready ``ready_after`` seconds after
        its creation (none while held); returns how many are ready and when that changes."""
        pods_path = f"/api/v1/namespaces/{quote(state.namespace)}/pods"
        while len(state.pods) > state.replicas:
            # Remove unready pods first, as the ReplicaSet controller does.
            name = min(state.pods, key=lambda pod: (state.pods[pod], pod))
            try:
                await self._http.call("DELETE", f"{pods_path}/{quote(name)}",
                                      query=[("gracePeriodSeconds", "0")])
            except ApiException as error:
                if error.status != 404:
                    raise
            self._drop_pod(state, name)
        while len(state.pods) < state.replicas:
            name = f"{state.name}-{''.join(secrets.choice(_NAME_ALPHABET) for _ in range(5))}"
            await self._http.call("POST", pods_path, body=self._pod(state, name))
            state.pods[name], state.born[name] = False, now
        held, ready, wake_at = self._is_held(state), 0, math.inf
        for name, is_ready in list(state.pods.items()):
            due = state.born.get(name, now) + self.ready_after
            should = not held and (is_ready or now >= due)  # a ready pod stays ready
            if not held and not should:
                wake_at = min(wake_at, due)
            if should != is_ready:
                try:
                    await self._http.call(
                        "PATCH", f"{pods_path}/{quote(name)}/status",
                        body={"status": _pod_status(ready=should)}, content_type=_MERGE_PATCH)
                except ApiException as error:
                    if error.status != 404:
                        raise
                    self._drop_pod(state, name)  # gone meanwhile: replaced next pass
                    wake_at = now
                    continue
                state.pods[name] = should
            ready += should
        return ready, wake_at

    @staticmethod
    def _drop_pod(state: _ReplicaSet, name: str) -> None:
        state.pods.pop(name, None)
        state.born.pop(name, None)

    def _pod_gone(self, obj: Obj) -> None:
        """A pod was deleted (or evicted): its ReplicaSet makes a new one."""
        meta = obj.get("metadata") or {}
        owner = next((ref.get("name", "") for ref in meta.get("ownerReferences") or ()
                      if ref.get("controller") and ref.get("kind") == "ReplicaSet"), "")
        state = self._sets.get((meta.get("namespace", ""), owner))
        if state is not None and meta.get("name") in state.pods:
            self._drop_pod(state, meta["name"])
            self._poke((state.namespace, state.name))

    def _pod(self, state: _ReplicaSet, name: str) -> Obj:
        template_meta = state.template.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": state.namespace,
                "labels": dict(template_meta.get("labels") or {}),
                "annotations": dict(template_meta.get("annotations") or {}),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": state.name,
                    "uid": state.uid, "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": state.template.get("spec") or {"containers": []},
        }


def _pod_status(*, ready: bool) -> Obj:
    flag = "True" if ready else "False"
    return {
        "phase": "Running" if ready else "Pending",
        "conditions": [
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
        ],
    }
