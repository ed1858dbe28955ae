"""The Prometheus provider against a fake Prometheus HTTP API: what it sends, what it reads.

Each test serves canned API answers from an aiohttp server on a loopback port and measures
through the real client code; nothing inside the provider is patched.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from shiftd.providers import Measurement, ProviderError, ProviderSettings, provider_for
from shiftd.providers.prometheus import eval_time
from tests.support.prometheus import free_port, serve

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakePrometheus:
    """Answers every request with ``status`` and ``body``; remembers what it was asked.

    With ``hang`` it answers only when the test is over (``release``), like a stuck server.
    """

    status: int = 200
    body: Any = None
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            (request.method, request.path, dict(request.query), dict(request.headers))
        )
        self.received.set()
        if self.hang:
            await self.release.wait()
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body)
        return web.json_response(self.body, status=self.status)


@asynccontextmanager
async def fake_prometheus(
    body: Any = None, *, status: int = 200, hang: bool = False
) -> AsyncIterator[tuple[str, FakePrometheus]]:
    fake = FakePrometheus(status=status, body=body, hang=hang)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with serve(app) as url:
        try:
            yield url, fake
        finally:
            fake.release.set()


def metric(address: str | None, query: str = "up", **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"query": query, **fields}
    if address is not None:
        spec["address"] = address
    return {"name": "success-rate", "provider": {"prometheus": spec}}


def success(result_type: str, result: Any, **extra: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}, **extra}


def sample(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1714564800.123, value]}


async def measure(spec: dict[str, Any], settings: ProviderSettings | None = None) -> Measurement:
    provider = provider_for(spec, settings=settings or ProviderSettings(), now=lambda: NOW)
    return await provider.measure(spec)


RESULTS = [
    pytest.param(success("vector", [sample("0.95")]), [0.95], "[0.95]", id="one-series vector"),
    pytest.param(success("vector", [sample("1")]), [1.0], "[1]", id="integral value"),
    pytest.param(
        success("vector", [sample("0.5", pod="a"), sample("0.25", pod="b")]),
        [0.5, 0.25],
        "[0.5,0.25]",
        id="two-series vector",
    ),
    pytest.param(success("vector", []), [], "[]", id="empty vector"),
    pytest.param(success("vector", [sample("NaN")]), [math.nan], "[NaN]", id="NaN in a vector"),
    pytest.param(
        success("vector", [sample("+Inf"), sample("-Inf")]),
        [math.inf, -math.inf],
        "[+Inf,-Inf]",
        id="infinities",
    ),
    pytest.param(
        success("vector", [sample("0.00001"), sample("12345678901234567")]),
        [0.00001, 12345678901234567.0],
        "[0.00001,12345678901234568]",
        id="no exponent notation, as Go's 'f' format",
    ),
    pytest.param(success("scalar", [1714564800, "0.9"]), 0.9, "0.9", id="scalar"),
    pytest.param(success("scalar", [1714564800, "NaN"]), math.nan, "NaN", id="NaN scalar"),
    pytest.param(
        success(
            "matrix",
            [
                {"metric": {"pod": "a"}, "values": [[1, "1"], [2, "2"]]},
                {"metric": {"pod": "b"}, "values": [[1, "3"]]},
            ],
        ),
        [1.0, 2.0, 3.0],
        "[1,2,3]",
        id="matrix flattened series by series",
    ),
    pytest.param(success("matrix", []), [], "[]", id="empty matrix"),
]


def same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return bool(actual == expected) and type(actual) is type(expected)


@pytest.mark.parametrize(("body", "value", "raw"), RESULTS)
async def test_results_become_what_conditions_see_and_what_argo_stores(
    body: dict[str, Any], value: Any, raw: str
) -> None:
    async with fake_prometheus(body) as (url, _):
        measurement = await measure(metric(url))
    assert same(measurement.value, value), measurement.value
    assert measurement.raw == raw


async def test_an_instant_query_is_a_get_of_api_v1_query_with_the_query_text() -> None:
    query = 'sum(rate(istio_requests_total{reporter="source"}[2m]))'
    async with fake_prometheus(success("vector", [])) as (url, fake):
        measurement = await measure(metric(url + "/", query))
    [(method, path, params, _)] = fake.requests
    assert (method, path, params) == ("GET", "/api/v1/query", {"query": query})
    assert measurement.metadata == {"ResolvedPrometheusQuery": query}


async def test_an_address_with_a_path_prefix_keeps_it() -> None:
    async with fake_prometheus(success("vector", [])) as (url, fake):
        await measure(metric(url + "/prometheus"))
    assert fake.requests[0][1] == "/prometheus/api/v1/query"


async def test_a_range_query_sends_start_end_and_step_from_its_time_expressions() -> None:
    spec = metric(
        None,
        "http_latency_ms",
        rangeQuery={"start": 'now() - duration("1h")', "end": "now()", "step": "1m"},
    )
    async with fake_prometheus(success("matrix", [])) as (url, fake):
        spec["provider"]["prometheus"]["address"] = url
        await measure(spec)
    [(_, path, params, _)] = fake.requests
    assert path == "/api/v1/query_range"
    assert params == {
        "query": "http_latency_ms",
        "start": f"{NOW.timestamp() - 3600:.3f}",
        "end": f"{NOW.timestamp():.3f}",
        "step": "60",
    }


@pytest.mark.parametrize(
    ("expression", "offset_seconds"),
    [
        ("now()", 0),
        ('now() - duration("1h")', -3600),
        ("now()-duration('90s')", -90),
        ('now() - duration("1h") + duration("30m")', -1800),
        (' now( ) + duration( "1m30s" ) ', 90),
    ],
)
def test_range_query_time_expressions_are_relative_to_now(
    expression: str, offset_seconds: float
) -> None:
    assert (eval_time(expression, now=NOW) - NOW).total_seconds() == offset_seconds


@pytest.mark.parametrize(
    "expression", ["", "now", "now() - 1h", 'time("2024-01-01")', 'now() * duration("1h")']
)
def test_time_expressions_beyond_now_and_duration_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="unsupported time expression"):
        eval_time(expression, now=NOW)


async def test_an_unparseable_range_query_bound_is_a_permanent_error() -> None:
    spec = metric("http://127.0.0.1:1", rangeQuery={"start": "yesterday", "end": "now()"})
    with pytest.raises(ProviderError, match=r"rangeQuery\.start") as caught:
        await measure(spec)
    assert not caught.value.transient


async def test_headers_and_basic_auth_are_sent() -> None:
    spec = metric(
        None,
        headers=[{"key": "X-Scope-OrgID", "value": "tenant_a"}],
        authentication={"basicAuth": {"username": "grafana", "password": "s3cret"}},
    )
    async with fake_prometheus(success("vector", [])) as (url, fake):
        spec["provider"]["prometheus"]["address"] = url
        await measure(spec)
    headers = fake.requests[0][3]
    assert headers["X-Scope-OrgID"] == "tenant_a"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"grafana:s3cret").decode()


async def test_oauth2_client_credentials_fetch_a_bearer_token_first() -> None:
    token_requests: list[tuple[dict[str, str], str]] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        token_requests.append(
            ({k: str(v) for k, v in form.items()}, request.headers["Authorization"])
        )
        return web.json_response({"access_token": "t0k3n", "token_type": "bearer"})

    app = web.Application()
    app.router.add_post("/token", token)
    async with serve(app) as token_url, fake_prometheus(success("vector", [])) as (url, fake):
        spec = metric(
            url,
            authentication={
                "oauth2": {
                    "tokenUrl": token_url + "/token",
                    "clientId": "rollouts",
                    "clientSecret": "shh",
                    "scopes": ["metrics:read", "tenant"],
                }
            },
        )
        await measure(spec)
    assert token_requests == [
        (
            {"grant_type": "client_credentials", "scope": "metrics:read tenant"},
            "Basic " + base64.b64encode(b"rollouts:shh").decode(),
        )
    ]
    assert fake.requests[0][3]["Authorization"] == "Bearer t0k3n"


async def test_sigv4_authentication_is_refused_as_unsupported() -> None:
    spec = metric("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1")
    spec["provider"]["prometheus"]["authentication"] = {"sigv4": {"region": "eu-west-1"}}
    with pytest.raises(ProviderError, match=r"sigv4.*not supported by shiftd yet") as caught:
        await measure(spec)
    assert not caught.value.transient


async def test_a_metric_without_address_uses_the_configured_default() -> None:
    async with fake_prometheus(success("vector", [sample("1")])) as (url, fake):
        measurement = await measure(metric(None), ProviderSettings(prometheus_default_address=url))
    assert measurement.value == [1.0]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, "no address, and no default Prometheus address is configured"),
        ("prometheus.istio-system:9090", "is not a URL"),
        ("/api", "is not a URL"),
    ],
)
async def test_a_missing_or_malformed_address_is_a_permanent_error(
    address: str | None, message: str
) -> None:
    with pytest.raises(ProviderError, match=message) as caught:
        await measure(metric(address))
    assert not caught.value.transient


ERRORS = [
    pytest.param(
        400,
        {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query"'},
        False,
        'answered 400: bad_data: invalid parameter "query"',
        id="bad query",
    ),
    pytest.param(
        422,
        {"status": "error", "errorType": "execution", "error": "many-to-many matching"},
        False,
        "execution: many-to-many matching",
        id="execution error",
    ),
    pytest.param(401, "Unauthorized", False, "answered 401: Unauthorized", id="unauthorized"),
    pytest.param(404, "404 page not found", False, "answered 404", id="wrong path"),
    pytest.param(
        503,
        {"status": "error", "errorType": "timeout", "error": "query timed out"},
        True,
        "timeout: query timed out",
        id="query timeout",
    ),
    pytest.param(500, "oops", True, "answered 500: oops", id="internal error"),
    pytest.param(502, "<html>bad gateway</html>", True, "answered 502", id="proxy error"),
    pytest.param(429, "slow down", True, "answered 429", id="rate limited"),
    pytest.param(200, "<html>login</html>", False, "no JSON object", id="not JSON"),
    pytest.param(200, {"status": "success"}, False, "has no data", id="no data"),
    pytest.param(
        200,
        success("string", [1, "hello"]),
        False,
        "Prometheus metric type not supported: string",
        id="string result",
    ),
    pytest.param(
        200,
        success("vector", [{"metric": {}}]),
        False,
        "malformed Prometheus vector result",
        id="vector sample without value",
    ),
    pytest.param(
        200,
        success("vector", [sample("not-a-number")]),
        False,
        "malformed Prometheus vector result",
        id="value that is no number",
    ),
]


@pytest.mark.parametrize(("status", "body", "transient", "message"), ERRORS)
async def test_failed_answers_are_errors_classified_by_whether_a_retry_may_help(
    status: int, body: Any, transient: bool, message: str
) -> None:
    async with fake_prometheus(body, status=status) as (url, _):
        with pytest.raises(ProviderError) as caught:
            await measure(metric(url))
    assert caught.value.transient is transient
    assert message in str(caught.value)


async def test_warnings_are_kept_in_the_metadata() -> None:
    body = success("vector", [sample("1")], warnings=["partial data", "slow"])
    async with fake_prometheus(body) as (url, _):
        measurement = await measure(metric(url))
    assert measurement.metadata["warnings"] == '"partial data", "slow"'


async def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(ProviderError) as caught:
        await measure(metric(f"http://127.0.0.1:{free_port()}"))
    assert caught.value.transient


async def test_a_slow_prometheus_times_out_after_the_metric_timeout_as_transient() -> None:
    async with fake_prometheus(success("vector", []), hang=True) as (url, _):
        started = asyncio.get_running_loop().time()
        with pytest.raises(ProviderError, match=r"timed out after 0\.2s") as caught:
            await measure(metric(url, timeout=0.2))
        elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.transient
    assert elapsed < 5


async def test_the_settings_timeout_applies_when_the_metric_sets_none() -> None:
    async with fake_prometheus(success("vector", []), hang=True) as (url, _):
        with pytest.raises(ProviderError, match=r"timed out after 0\.2s"):
            await measure(metric(url), ProviderSettings(timeout_seconds=0.2))


async def test_a_negative_timeout_is_a_permanent_error() -> None:
    with pytest.raises(ProviderError, match="must not be negative") as caught:
        await measure(metric("http://127.0.0.1:1", timeout=-1))
    assert not caught.value.transient


async def test_a_measurement_can_be_cancelled_while_waiting_for_prometheus() -> None:
    async with (
        fake_prometheus(success("vector", []), hang=True) as (url, fake),
        asyncio.TaskGroup() as group,
    ):
        task = group.create_task(measure(metric(url)))
        await fake.received.wait()
        task.cancel()
    assert task.cancelled()
