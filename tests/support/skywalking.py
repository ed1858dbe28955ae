"""A small SkyWalking OAP for tests: a real aiohttp server answering the GraphQL endpoint the
way ``shiftd.providers.skywalking`` queries it.

``async with skywalking_oap() as oap:`` serves ``POST {oap.url}/graphql`` on a free loopback
port. Each request is a GraphQL document and its variables (``{"query": ..., "variables":
{"duration": {"start", "end", "step"}}}``); the server reads the ``serviceName`` the query's
``readMetricsValues`` condition names and answers as OAP does:
``{"data": {"<alias>": {"label": null, "values": {"values": [{"value": N}, ...]}}}}`` with the
Apdex values (x10000, one per minute of the duration) the test set for that service
(``oap.apdex[service] = [...]``, changeable at any time), or a GraphQL error for a service it
does not know. Every request is kept in ``oap.requests`` for assertions.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.prometheus import serve

__all__ = ["SkyWalkingOap", "skywalking_oap"]

_SERVICE = re.compile(r'serviceName:\s*"([^"]*)"')
_ALIAS = re.compile(r"(\w+)\s*:\s*readMetricsValues")


@dataclass
class SkyWalkingOap:
    """OAP's GraphQL endpoint: Apdex per minute for the services it knows."""

    url: str = ""
    apdex: dict[str, list[int]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def services_queried(self) -> list[str]:
        return [match.group(1) for request in self.requests
                if (match := _SERVICE.search(str(request.get("query", ""))))]

    async def graphql(self, request: web.Request) -> web.Response:
        document = await request.json()
        self.requests.append(document)
        query = str(document.get("query", ""))
        duration = (document.get("variables") or {}).get("duration") or {}
        if duration.get("step") != "MINUTE" or not duration.get("start"):
            return web.json_response({"data": None, "errors": [
                {"message": "Variable \"$duration\" of required type \"Duration!\" was not "
                            "provided."}]})
        service, alias = _SERVICE.search(query), _ALIAS.search(query)
        if service is None or alias is None or service.group(1) not in self.apdex:
            return web.json_response({"data": None,
                                      "errors": [{"message": "Service does not exist"}]})
        values = [{"value": value} for value in self.apdex[service.group(1)]]
        return web.json_response(
            {"data": {alias.group(1): {"label": None, "values": {"values": values}}}})


@asynccontextmanager
async def skywalking_oap() -> AsyncIterator[SkyWalkingOap]:
    oap = SkyWalkingOap()
    app = web.Application()
    app.router.add_post("/graphql", oap.graphql)
    async with serve(app) as url:
        oap.url = url
        yield oap
