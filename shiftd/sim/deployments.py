"""``FakeDeployments``: plays the Deployment controller's status for tests and the demo.

Beside ``FakeKubelet`` (which plays the ReplicaSet controller), this gives Deployments the
status Flagger's readiness checks read. ``ready_after`` seconds after a Deployment's
generation changes (its template or replicas), its status reports that generation observed
and every replica updated, ready and available; until then the status is left as it was
(so a reader sees "observed generation less than desired"). It watches Deployments over HTTP
with kubernetes_asyncio, so it works the same against the emulator and a real API server,
where it writes ``deployments/status`` (no pods are run; a real cluster's own controller
would fight it, so use it only where no Deployment controller runs). ``hold`` keeps one
Deployment unready until ``release``; ``exceed_deadline`` makes one report, from its next
change on, what the controller reports once ``progressDeadlineSeconds`` passed without its
pods becoming available. Statuses carry the controller's ``Available`` and ``Progressing``
conditions (type, status, reason, message as Kubernetes writes them).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
from anyio.abc import TaskStatus
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from shiftd.sim.kubelet import _Http

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"


@dataclass(slots=True)
class _Deployment:
    namespace: str
    name: str
    generation: int
    replicas: int
    changed_at: float  # anyio time when the generation last changed
    status: Obj
    changed_wall: str  # the same moment, as the conditions' RFC 3339 timestamps


class FakeDeployments:
    """Makes Deployments in ``namespaces`` report ready ``ready_after`` seconds after each
    change; start ``run`` in a task group (``await tg.start(fake.run)``)."""

    def __init__(self, api_client: ApiClient, *, namespaces: Sequence[str],
                 ready_after: float = 0.0, retry_after: float = 0.5) -> None:
        self._http = _Http(api_client)
        self._namespaces = tuple(namespaces)
        self.ready_after = ready_after
        self._retry_after = retry_after
        self._known: dict[tuple[str, str], _Deployment] = {}
        self._held: set[tuple[str, str]] = set()
        self._stalled: set[tuple[str, str]] = set()
        self._wake: anyio.Event | None = None

    def hold(self, namespace: str, name: str) -> None:
        """Keep this Deployment's status as it is (not ready after a change) until release."""
        self._held.add((namespace, name))

    def release(self, namespace: str, name: str) -> None:
        self._held.discard((namespace, name))
        self._poke()

    def exceed_deadline(self, namespace: str, name: str) -> None:
        """From now on this Deployment's pods never become available and its progress
        deadline is reported exceeded (Progressing False, ProgressDeadlineExceeded)."""
        self._stalled.add((namespace, name))
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            for namespace in self._namespaces:
                await tg.start(self._watch_namespace, namespace)
            task_status.started()
            await self._reconcile_forever()

    async def _watch_namespace(self, namespace: str, *,
                               task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                               ) -> None:
        path = f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments"
        started = False
        while True:
            try:
                listed = await self._http.call("GET", path)
                for item in listed.get("items") or []:
                    item["metadata"].setdefault("namespace", namespace)
                    self._observe(item)
                if not started:
                    task_status.started()
                    started = True
                version = (listed.get("metadata") or {}).get("resourceVersion", "")
                await self._follow(path, version)
            except ApiException as error:
                if error.status != 410:
                    logger.warning("fake deployments: watching %s failed: %s", path, error)
                    await anyio.sleep(self._retry_after)  # back off before retrying
            except (aiohttp.ClientError, OSError) as error:
                logger.info("fake deployments: watch on %s broke (%s)", path, error)
                await anyio.sleep(self._retry_after)  # back off before reconnecting

    async def _follow(self, path: str, version: str) -> None:
        query = [("resourceVersion", version), ("timeoutSeconds", "300")]
        async with self._http.watch(path, query) as events:
            async for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                if kind in ("ADDED", "MODIFIED"):
                    self._observe(obj)
                elif kind == "DELETED":
                    meta = obj.get("metadata") or {}
                    self._known.pop((meta.get("namespace", ""), meta.get("name", "")), None)

    def _observe(self, obj: Obj) -> None:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        key = (meta.get("namespace", ""), meta["name"])
        generation = int(meta.get("generation") or 1)
        known = self._known.get(key)
        if known is None or known.generation != generation:
            known = self._known[key] = _Deployment(
                namespace=key[0], name=key[1], generation=generation,
                replicas=int(spec.get("replicas", 1)), changed_at=anyio.current_time(),
                status=dict(obj.get("status") or {}),
                changed_wall=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        known.status = dict(obj.get("status") or {})
        self._poke()

    def _desired(self, state: _Deployment) -> Obj:
        count = state.replicas
        if (state.namespace, state.name) in self._stalled:
            return {"observedGeneration": state.generation, "replicas": count,
                    "updatedReplicas": count, "readyReplicas": 0, "availableReplicas": 0,
                    "unavailableReplicas": count, "conditions": [
                        _condition(state, "Available", "False", "MinimumReplicasUnavailable",
                                   "Deployment does not have minimum availability."),
                        _condition(state, "Progressing", "False", "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{state.name}" has timed out progressing.')]}
        return {"observedGeneration": state.generation, "replicas": count,
                "updatedReplicas": count, "readyReplicas": count, "availableReplicas": count,
                "conditions": [
                    _condition(state, "Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability."),
                    _condition(state, "Progressing", "True", "NewReplicaSetAvailable",
                               f'ReplicaSet "{state.name}" has successfully progressed.')]}

    async def _reconcile_forever(self) -> None:
        while True:
            wake = self._wake = anyio.Event()
            now, wake_at = anyio.current_time(), math.inf
            for state in list(self._known.values()):
                if (state.namespace, state.name) in self._held:
                    continue
                due = state.changed_at + self.ready_after
                if now < due:
                    wake_at = min(wake_at, due)
                    continue
                desired = self._desired(state)
                if all(state.status.get(k, 0) == v for k, v in desired.items()):
                    continue
                try:
                    await self._patch_status(state, desired)
                except ApiException as error:
                    if error.status == 404:
                        self._known.pop((state.namespace, state.name), None)
                    else:
                        logger.warning("fake deployments: updating %s/%s failed: %s",
                                       state.namespace, state.name, error)
                        wake_at = min(wake_at, now + self._retry_after)
            with anyio.move_on_after(max(0.0, wake_at - anyio.current_time())):
                await wake.wait()

    async def _patch_status(self, state: _Deployment, desired: Obj) -> None:
        path = (f"/apis/apps/v1/namespaces/{quote(state.namespace)}/deployments/"
                f"{quote(state.name)}/status")
        updated = await self._http.call("PATCH", path, body={"status": desired},
                                        content_type=_MERGE_PATCH)
        state.status = dict(updated.get("status") or desired)


def _condition(state: _Deployment, kind: str, status: str, reason: str, message: str) -> Obj:
    """One of the Deployment controller's status conditions, dated at the last change."""
    return {"type": kind, "status": status, "lastUpdateTime": state.changed_wall,
            "lastTransitionTime": state.changed_wall, "reason": reason, "message": message}
