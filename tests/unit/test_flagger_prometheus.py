"""Prometheus queried by Flagger's rules, against a local HTTP server standing in for it."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shiftd.decide.flagger.metrics import PrometheusCredentials
from shiftd.providers.base import ProviderError
from shiftd.providers.flagger_prometheus import NoValuesFound, is_online, query_url, run_query
from tests.support.prometheus import serve


@dataclass
class FakePrometheus:
    status: int = 200
    document: Any = field(default_factory=lambda: vector("99.5"))
    seen: list[web.Request] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        self.queries.append(request.query.get("query", ""))
        text = self.document if isinstance(self.document, str) else json.dumps(self.document)
        return web.Response(status=self.status, text=text)


def vector(*values: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"i": str(i)}, "value": [1700000000, v]} for i, v in enumerate(values)]}}


@asynccontextmanager
async def prometheus(
    fake: FakePrometheus, prefix: str = ""
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    app = web.Application()
    app.router.add_get(f"{prefix}/api/v1/query", fake.handle)
    async with serve(app) as url, aiohttp.ClientSession() as session:
        yield f"{url}{prefix}", session


async def test_the_query_is_sent_with_its_whitespace_collapsed() -> None:
    fake = FakePrometheus()
    async with prometheus(fake) as (url, session):
        value = await run_query(session, address=url, query="sum(\n\trate(x[1m])\n)")
    assert value == 99.5
    assert fake.queries == ["sum( rate(x[1m]) )"]


async def test_a_path_in_the_address_is_kept_as_a_prefix() -> None:
    fake = FakePrometheus()
    async with prometheus(fake, prefix="/prom") as (url, session):
        assert await run_query(session, address=url + "/", query="up") == 99.5
    assert query_url("http://p:9090/prom/") == "http://p:9090/prom/api/v1/query"


async def test_template_headers_and_credentials_are_sent() -> None:
    fake = FakePrometheus()
    async with prometheus(fake) as (url, session):
        await run_query(session, address=url, query="up",
                        headers={"X-Scope-OrgID": ["team-a"]},
                        authorization=PrometheusCredentials(token="t0k").headers())
    assert fake.seen[0].headers["X-Scope-OrgID"] == "team-a"
    assert fake.seen[0].headers["Authorization"] == "Bearer t0k"


@pytest.mark.parametrize(("document", "expected"), [
    (vector("1", "2", "3"), 3.0),  # the last series wins, as in Flagger's loop
    (vector("+Inf"), math.inf),
    (vector("0"), 0.0),
])
async def test_the_value_is_the_sample_of_the_last_series(
        document: dict[str, Any], expected: float) -> None:
    async with prometheus(FakePrometheus(document=document)) as (url, session):
        assert await run_query(session, address=url, query="q") == expected


@pytest.mark.parametrize("document", [vector(), vector("NaN")])
async def test_nothing_or_nan_is_no_values_found(document: dict[str, Any]) -> None:
    async with prometheus(FakePrometheus(document=document)) as (url, session):
        with pytest.raises(NoValuesFound, match=r"^no values found$"):
            await run_query(session, address=url, query="q")


@pytest.mark.parametrize(("fake", "message"), [
    (FakePrometheus(status=503, document="down"),
     "error response: Status 503 Service Unavailable: down"),
    (FakePrometheus(status=400, document="bad_data"), "error response: Status 400 Bad Request"),
    (FakePrometheus(document="<html>"), "error unmarshaling result"),
    (FakePrometheus(document={"data": {"resultType": "scalar", "result": [1, "1"]}}),
     "error unmarshaling result"),
    (FakePrometheus(document={"data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1, "1"], [2, "2"]]}]}}), "query returned multiple values"),
])
async def test_errors_read_as_flaggers(fake: FakePrometheus, message: str) -> None:
    async with prometheus(fake) as (url, session):
        with pytest.raises(ProviderError, match=message) as raised:
            await run_query(session, address=url, query="q")
    assert not isinstance(raised.value, NoValuesFound)


async def test_an_unusable_address_is_an_error() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ProviderError, match="is not a valid URL"):
            await run_query(session, address="prometheus:9090", query="q")


@pytest.mark.parametrize(("document", "online"), [(vector("1"), True), (vector("0"), False),
                                                  (vector(), False)])
async def test_prometheus_is_online_when_vector_1_answers_1(
        document: dict[str, Any], online: bool) -> None:
    fake = FakePrometheus(document=document)
    async with prometheus(fake) as (url, session):
        if online:
            await is_online(session, address=url)
        else:
            with pytest.raises(ProviderError):
                await is_online(session, address=url)
    assert fake.queries == ["vector(1)"]
