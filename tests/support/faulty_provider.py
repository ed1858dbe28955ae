"""A metric provider that misbehaves on demand, over real HTTP, for the provider-fault tests.

``async with faulty_provider() as server:`` serves, on one free loopback port, the three
HTTP metric providers' endpoints the way shiftd (and Argo) query them:

- Prometheus: ``GET {server.url}/api/v1/query`` answers an instant vector;
- SkyWalking: ``POST {server.url}/graphql`` answers ``readMetricsValues`` (alias
  ``service_apdex``) with Apdex values (x10000);
- web: ``GET {server.url}/metric`` answers ``{"value": <success rate>}``.

Each answers according to ``server.fault`` (changeable at any time):

- ``healthy``: a good value (0.99, Apdex 9950);
- ``down``: nothing listens on the port (the listener is closed; connections are refused)
  until the fault changes (``await server.set_fault(...)`` reopens it on the same port);
- ``slow``: the answer comes only once ``server.release`` is set (at the latest when the server
  stops), i.e. after any provider timeout;
- ``malformed``: HTTP 200 with a JSON document cut in the middle;
- ``nan``: NaN where the value goes (Prometheus's ``"NaN"`` sample; a bare ``NaN`` token, as
  Python's ``json.dumps`` writes it, for SkyWalking and web);
- ``empty``: an empty result (Prometheus's empty vector, no SkyWalking values, ``{"value":
  []}`` for web).

``server.requests`` counts the requests each endpoint received.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web

__all__ = ["FAULTS", "FaultyProvider", "faulty_provider"]

FAULTS = ("healthy", "down", "slow", "malformed", "nan", "empty")
HEALTHY_RATE = 0.99
HEALTHY_APDEX = 9950
_CUT_JSON = '{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {'


@dataclass
class FaultyProvider:
    """The server's state: the fault it plays and what it was asked."""

    runner: web.AppRunner
    url: str = ""
    fault: str = "healthy"
    requests: Counter[str] = field(default_factory=Counter)
    release: anyio.Event = field(default_factory=anyio.Event)
    _site: web.TCPSite | None = None

    async def set_fault(self, fault: str) -> None:
        """Play ``fault`` from now on (closing or reopening the listener for ``down``)."""
        assert fault in FAULTS, fault
        self.fault = fault
        if fault == "down" and self._site is not None:
            await self._site.stop()
            self._site = None
        elif fault != "down" and self._site is None:
            await self._listen(port=int(self.url.rsplit(":", 1)[1]))

    async def _listen(self, *, port: int) -> None:
        self._site = web.TCPSite(self.runner, "127.0.0.1", port)
        await self._site.start()
        host, bound = self.runner.addresses[-1][:2]
        self.url = f"http://{host}:{bound}"

    async def _played(self, endpoint: str) -> str:
        """The fault to answer this request with, once a slow answer is released."""
        self.requests[endpoint] += 1
        if self.fault == "slow":
            await self.release.wait()
            return "healthy"
        return self.fault

    async def prometheus(self, request: web.Request) -> web.Response:
        fault = await self._played("prometheus")
        if fault == "malformed":
            return web.Response(text=_CUT_JSON, content_type="application/json")
        samples = {"healthy": [str(HEALTHY_RATE)], "nan": ["NaN"], "empty": []}[fault]
        result = [{"metric": {}, "value": [1764561600.0, sample]} for sample in samples]
        return web.json_response({"status": "success",
                                  "data": {"resultType": "vector", "result": result}})

    async def skywalking(self, request: web.Request) -> web.Response:
        fault = await self._played("skywalking")
        if fault == "malformed":
            return web.Response(text='{"data": {"service_apdex": {"label": null, "values": {',
                                content_type="application/json")
        values: list[Any] = {"healthy": [HEALTHY_APDEX], "nan": [float("nan")],
                             "empty": []}[fault]
        body = {"data": {"service_apdex": {"label": None, "values": {
            "values": [{"value": value} for value in values]}}}}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def web_metric(self, request: web.Request) -> web.Response:
        fault = await self._played("web")
        if fault == "malformed":
            return web.Response(text='{"value": 0.9', content_type="application/json")
        value: Any = {"healthy": HEALTHY_RATE, "nan": float("nan"), "empty": []}[fault]
        return web.Response(text=json.dumps({"value": value}), content_type="application/json")


@asynccontextmanager
async def faulty_provider() -> AsyncIterator[FaultyProvider]:
    app = web.Application()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    server = FaultyProvider(runner)
    app.router.add_get("/api/v1/query", server.prometheus)
    app.router.add_post("/graphql", server.skywalking)
    app.router.add_get("/metric", server.web_metric)
    await runner.setup()
    try:
        await server._listen(port=0)
        yield server
    finally:
        server.release.set()
        await runner.cleanup()
