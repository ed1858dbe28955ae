"""A stand-in for Flagger's loadtester (``flagger-loadtester``), for webhook and seed tests.

``async with loadtester() as tester:`` serves, on a free loopback port, what the real one
answers on ``POST /`` (a ``CanaryWebhookPayload``): 400 ``metadata not found in payload``
without metadata, 400 for a task type it does not know, else 200 after recording the task.
Nothing is run: :attr:`FakeLoadTester.tasks` holds what was asked, in order, so a test can
check a ``rollout`` hook's ``metadata.cmd`` reached it. The gate endpoints (``/gate/approve``
200, ``/gate/halt`` 403) answer as the real ones do, for confirm hooks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.prometheus import serve

__all__ = ["FakeLoadTester", "LoadTestTask", "loadtester"]

# The loadtester's task types; "cmd" when metadata has no "type".
TASK_TYPES = frozenset({"cmd", "bash", "helm", "helmv3", "kubectl", "concord", "grpc", "ngrinder"})


@dataclass(frozen=True)
class LoadTestTask:
    canary: str  # "<name>.<namespace>", as the loadtester logs it
    type: str
    cmd: str
    payload: dict[str, Any]


@dataclass
class FakeLoadTester:
    url: str = ""
    tasks: list[LoadTestTask] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, reason)

    async def _new_task(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return self._refuse(400, "")
        metadata = payload.get("metadata") or {}
        if not metadata:
            return self._refuse(400, "metadata not found in payload")
        kind = metadata.get("type", "cmd")
        if kind not in TASK_TYPES:
            return self._refuse(400, f"unknown task type {kind}")
        canary = f"{payload.get('name')}.{payload.get('namespace')}"
        self.tasks.append(LoadTestTask(canary=canary, type=kind, cmd=metadata.get("cmd", ""),
                                       payload=payload))
        return web.Response(status=200)

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refused.append((status, reason))
        return web.Response(status=status, text=reason)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._new_task)
        app.router.add_route("*", "/gate/approve", _approve)
        app.router.add_route("*", "/gate/halt", _halt)
        return app


async def _approve(_: web.Request) -> web.Response:
    return web.Response(status=200)


async def _halt(_: web.Request) -> web.Response:
    return web.Response(status=403)


@asynccontextmanager
async def loadtester() -> AsyncIterator[FakeLoadTester]:
    tester = FakeLoadTester()
    async with serve(tester.app()) as url:
        tester.url = url
        yield tester
