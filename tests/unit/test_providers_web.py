"""The web provider against an aiohttp server, and its Kubernetes-JSONPath subset in tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from shiftd.providers import Measurement, ProviderError, ProviderSettings, provider_for
from shiftd.providers.web import JsonPathError, compile_json_path, find_first
from tests.support.prometheus import free_port, serve

DOCUMENT = {
    "data": {
        "ok": True,
        "rate": 0.97,
        "count": 12,
        "name": "canary",
        "items": [{"v": 1}, {"v": 2}, {"v": 3}],
        "empty": [],
        "odd key": "spaced",
    }
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("{$}", DOCUMENT),
        ("{.}", DOCUMENT),
        ("{$.data.ok}", True),
        ("{.data.rate}", 0.97),
        ("{ $.data.count }", 12),
        ("{$.data.items[0].v}", 1),
        ("{$.data.items[-1].v}", 3),
        ("{$.data.items[*].v}", 1),
        ("{$.data.items[1:].v}", 2),
        ("{$.data['odd key']}", "spaced"),
        ('{$["data"]["name"]}', "canary"),
        ("{$.data.items}", [{"v": 1}, {"v": 2}, {"v": 3}]),
    ],
)
def test_json_paths_select_the_first_value_argo_would(path: str, expected: Any) -> None:
    assert find_first(compile_json_path(path), DOCUMENT) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{$.data.missing}", "missing is not found"),
        ("{$.data.items[5]}", "array index out of bounds"),
        ("{$.data.empty[*]}", "produced no value"),
        ("{$.data.name.first}", "not an object"),
        ("{$.data.ok[0]}", "arrays only"),
    ],
)
def test_json_paths_that_select_nothing_say_why(path: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=message):
        find_first(compile_json_path(path), DOCUMENT)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.data.ok", "must be one expression in braces"),
        ("{$.a}{$.b}", "only one"),
        ("{$..v}", "recursive descent"),
        ("{$.items[?(@.v > 1)]}", "filter expressions"),
        ("{$.data[}", "cannot parse"),
    ],
)
def test_json_paths_beyond_the_subset_are_refused(path: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=message):
        compile_json_path(path)


@dataclass
class FakeEndpoint:
    status: int = 200
    body: Any = field(default_factory=lambda: DOCUMENT)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hang: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, dict(request.headers), await request.read()))
        if self.hang:
            await self.release.wait()
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body)
        return web.json_response(self.body, status=self.status)


@asynccontextmanager
async def endpoint(**fields: Any) -> AsyncIterator[tuple[str, FakeEndpoint]]:
    fake = FakeEndpoint(**fields)
    app = web.Application()
    app.router.add_route("*", "/check", fake.handle)
    async with serve(app) as url:
        try:
            yield url + "/check", fake
        finally:
            fake.release.set()


async def measure(**spec: Any) -> Measurement:
    metric = {"name": "smoke", "provider": {"web": spec}}
    return await provider_for(metric, settings=ProviderSettings()).measure(metric)


async def test_a_get_sends_the_headers_and_reads_the_json_path() -> None:
    async with endpoint() as (url, fake):
        measurement = await measure(
            url=url,
            headers=[{"key": "Authorization", "value": "Bearer abc"}],
            jsonPath="{$.data.ok}",
        )
    assert (measurement.value, measurement.raw) == (True, "true")
    [(method, headers, body)] = fake.requests
    assert (method, headers["Authorization"], body) == ("GET", "Bearer abc", b"")


async def test_numbers_are_floats_as_go_decodes_them_and_raw_is_go_json() -> None:
    async with endpoint() as (url, _):
        count = await measure(url=url, jsonPath="{$.data.count}")
        items = await measure(url=url, jsonPath="{$.data.items}")
    assert (count.value, count.raw) == (12.0, "12")
    assert isinstance(count.value, float)
    assert items.raw == '[{"v":1},{"v":2},{"v":3}]'


async def test_without_json_path_the_whole_document_is_the_result() -> None:
    async with endpoint(body={"b": 1, "a": "<x>"}) as (url, _):
        measurement = await measure(url=url)
    assert measurement.value == {"a": "<x>", "b": 1.0}
    assert measurement.raw == '{"a":"\\u003cx\\u003e","b":1}'


async def test_an_answer_that_is_not_json_is_its_text() -> None:
    async with endpoint(body="OK") as (url, _):
        measurement = await measure(url=url, jsonPath="{$.data.ok}")
    assert (measurement.value, measurement.raw) == ("OK", "OK")


async def test_a_post_with_json_body_sends_it_as_application_json() -> None:
    async with endpoint() as (url, fake):
        await measure(url=url, method="POST", jsonBody={"service": "canary", "window": 5})
    [(method, headers, body)] = fake.requests
    assert method == "POST"
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"service":"canary","window":5}'


async def test_a_put_with_a_text_body_sends_it_as_is() -> None:
    async with endpoint() as (url, fake):
        await measure(url=url, method="PUT", body="window=5m")
    assert fake.requests[0][0] == "PUT" and fake.requests[0][2] == b"window=5m"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"method": "GET", "body": "x"}, "only be used with the POST or PUT"),
        ({"method": "POST", "body": "x", "jsonBody": {}}, "either body or jsonBody"),
        ({"method": "DELETE"}, "is not one of GET, POST, PUT"),
        ({"jsonPath": "$.data"}, "jsonPath: "),
        ({"url": ""}, "url is required"),
    ],
)
async def test_specs_argo_refuses_are_permanent_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError, match=message) as caught:
        await measure(**{"url": "http://127.0.0.1:1/check", **spec})
    assert not caught.value.transient


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (503, True), (429, True), (404, False), (403, False)]
)
async def test_non_2xx_answers_are_errors_classified_by_status(
    status: int, transient: bool
) -> None:
    async with endpoint(status=status, body="nope") as (url, _):
        with pytest.raises(ProviderError, match=f"non 2xx response code: {status}") as caught:
            await measure(url=url)
    assert caught.value.transient is transient


async def test_a_path_missing_from_the_answer_is_a_permanent_error() -> None:
    async with endpoint() as (url, _):
        with pytest.raises(ProviderError, match="missing is not found") as caught:
            await measure(url=url, jsonPath="{$.data.missing}")
    assert not caught.value.transient


async def test_an_unreachable_endpoint_is_transient() -> None:
    with pytest.raises(ProviderError) as caught:
        await measure(url=f"http://127.0.0.1:{free_port()}/check")
    assert caught.value.transient


async def test_a_stuck_endpoint_times_out_after_timeout_seconds() -> None:
    async with endpoint(hang=True) as (url, _):
        with pytest.raises(ProviderError, match=r"timed out after 0\.2s") as caught:
            await measure(url=url, timeoutSeconds=0.2)
    assert caught.value.transient
