"""The SkyWalking provider against a small GraphQL server answering seed 004's Apdex query.

The server stands in for SkyWalking's OAP at the HTTP boundary: it reads the posted GraphQL
document and its ``$duration`` variable and answers ``readMetricsValues`` the way OAP does,
per service name. Nothing inside the provider is patched.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from shiftd.model.argo.analysis import substitute_all
from shiftd.providers import ProviderError, ProviderSettings, provider_for
from shiftd.providers.skywalking import query_duration
from tests.integration.harness import example_documents
from tests.support.prometheus import free_port, serve

NOW = datetime(2024, 5, 1, 12, 0, 42, tzinfo=UTC)
CANARY = "canary|reviews|bookinfo|cp-cluster-1|-"
DEGRADED = "canary|ratings|bookinfo|cp-cluster-1|-"


def apdex_metric() -> dict[str, Any]:
    """Seed 004's metric, from the example's AnalysisTemplate, untouched."""
    [template] = [
        d for d in example_documents("tsb-subset-skywalking") if d["kind"] == "AnalysisTemplate"
    ]
    metric: dict[str, Any] = copy.deepcopy(template["spec"]["metrics"][0])
    return metric


@dataclass
class FakeOap:
    """OAP's GraphQL endpoint: Apdex per minute (x10000) for the services it knows."""

    apdex: dict[str, list[int]]
    answer: tuple[int, Any] | None = None  # a canned (status, body) instead of real data
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def graphql(self, request: web.Request) -> web.Response:
        document = await request.json()
        self.posts.append(document)
        self.headers.append(dict(request.headers))
        if self.answer is not None:
            status, body = self.answer
            if isinstance(body, str):
                return web.Response(status=status, text=body)
            return web.json_response(body, status=status)
        match = re.search(r'serviceName:\s*"([^"]*)"', document["query"])
        if match is None or match.group(1) not in self.apdex:
            return web.json_response(
                {"data": None, "errors": [{"message": "Service does not exist"}]}
            )
        values = [{"value": value} for value in self.apdex[match.group(1)]]
        return web.json_response(
            {"data": {"service_apdex": {"label": None, "values": {"values": values}}}}
        )


@asynccontextmanager
async def fake_oap(answer: tuple[int, Any] | None = None) -> AsyncIterator[tuple[str, FakeOap]]:
    oap = FakeOap(apdex={CANARY: [9950, 10000, 9980], DEGRADED: [9990, 9120, 8800]}, answer=answer)
    app = web.Application()
    app.router.add_post("/graphql", oap.graphql)
    async with serve(app) as url:
        yield url, oap


def at(metric: dict[str, Any], url: str) -> dict[str, Any]:
    metric["provider"]["skywalking"]["address"] = url  # the example names the in-cluster OAP
    return metric


async def measure(metric: dict[str, Any], service: str = CANARY) -> Any:
    rendered = substitute_all(metric, {"service-name": service})
    provider = provider_for(rendered, settings=ProviderSettings(), now=lambda: NOW)
    return await provider.measure(rendered)


async def test_seed_004_query_is_posted_verbatim_with_the_last_interval_as_duration() -> None:
    metric = apdex_metric()
    async with fake_oap() as (url, oap):
        await measure(at(metric, url))
    [post] = oap.posts
    expected_query = metric["provider"]["skywalking"]["query"].replace(
        "{{ args.service-name }}", CANARY
    )
    assert post == {
        "query": expected_query,
        "variables": {
            "duration": {"start": "2024-05-01 1157", "end": "2024-05-01 1200", "step": "MINUTE"}
        },
    }
    assert oap.headers[0]["Content-Type"].startswith("application/json")


async def test_the_result_is_the_graphql_data_with_numbers_as_floats() -> None:
    async with fake_oap() as (url, _):
        measurement = await measure(at(apdex_metric(), url))
    values = measurement.value["service_apdex"]["values"]["values"]
    # What the seed's condition all(result.service_apdex.values.values,
    # {asFloat(.value) >= 9900}) walks over.
    assert values == [{"value": 9950.0}, {"value": 10000.0}, {"value": 9980.0}]
    assert all(isinstance(item["value"], float) for item in values)
    assert measurement.raw == (
        '{"service_apdex":{"label":null,"values":{"values":'
        '[{"value":9950},{"value":10000},{"value":9980}]}}}'
    )
    assert measurement.metadata == {}


async def test_a_degraded_canary_is_measured_all_the_same() -> None:
    async with fake_oap() as (url, _):
        measurement = await measure(at(apdex_metric(), url), DEGRADED)
    values = measurement.value["service_apdex"]["values"]["values"]
    assert [item["value"] for item in values] == [9990.0, 9120.0, 8800.0]


@pytest.mark.parametrize(
    ("now", "interval", "expected"),
    [
        pytest.param(NOW, 180, ("2024-05-01 1157", "2024-05-01 1200"), id="3m, seconds dropped"),
        pytest.param(NOW, 300, ("2024-05-01 1155", "2024-05-01 1200"), id="5m"),
        pytest.param(
            datetime(2024, 1, 1, 0, 2, tzinfo=UTC),
            300,
            ("2023-12-31 2357", "2024-01-01 0002"),
            id="across midnight and the year",
        ),
        pytest.param(
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            3600,
            ("2024-05-01 1100", "2024-05-01 1200"),
            id="other zones are written in UTC",
        ),
        pytest.param(NOW, 30, ("2024-05-01 1200", "2024-05-01 1200"), id="under a minute"),
    ],
)
def test_the_duration_covers_the_interval_up_to_now_in_utc_minutes(
    now: datetime, interval: float, expected: tuple[str, str]
) -> None:
    duration = query_duration(now=now, interval_seconds=interval)
    assert (duration["start"], duration["end"], duration["step"]) == (*expected, "MINUTE")


ERRORS = [
    pytest.param(
        (200, {"data": None, "errors": [{"message": "Field 'x' is undefined"}]}),
        False,
        "graphql: Field 'x' is undefined",
        id="GraphQL error",
    ),
    pytest.param((200, {"data": None}), False, "no results returned", id="null data"),
    pytest.param((200, "<html>proxy</html>"), False, "no JSON object", id="not JSON"),
    pytest.param(
        (500, {"errors": [{"message": "storage unavailable"}]}),
        True,
        "answered 500: storage unavailable",
        id="server error with GraphQL errors",
    ),
    pytest.param((503, "unavailable"), True, "answered 503: unavailable", id="unavailable"),
    pytest.param((400, "bad request"), False, "answered 400", id="bad request"),
]


@pytest.mark.parametrize(("answer", "transient", "message"), ERRORS)
async def test_failed_answers_are_errors_classified_by_whether_a_retry_may_help(
    answer: tuple[int, Any], transient: bool, message: str
) -> None:
    async with fake_oap(answer) as (url, _):
        with pytest.raises(ProviderError) as caught:
            await measure(at(apdex_metric(), url))
    assert caught.value.transient is transient
    assert message in str(caught.value)


async def test_an_unknown_service_is_an_error_from_oap() -> None:
    async with fake_oap() as (url, _):
        with pytest.raises(ProviderError, match="Service does not exist"):
            await measure(at(apdex_metric(), url), "canary|nope|bookinfo|cp-cluster-1|-")


async def test_an_unreachable_oap_is_transient() -> None:
    with pytest.raises(ProviderError) as caught:
        await measure(at(apdex_metric(), f"http://127.0.0.1:{free_port()}"))
    assert caught.value.transient


async def test_a_stuck_oap_times_out_as_transient() -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/graphql", stuck)
    async with serve(app) as url:
        try:
            provider = provider_for(
                apdex_metric(), settings=ProviderSettings(timeout_seconds=0.2), now=lambda: NOW
            )
            with pytest.raises(ProviderError, match="timed out") as caught:
                rendered = substitute_all(at(apdex_metric(), url), {"service-name": "x"})
                await provider.measure(rendered)
        finally:
            release.set()
    assert caught.value.transient


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("interval", None, "interval"),
        ("interval", "three minutes", "interval"),
        ("address", None, "address is required"),
        ("query", "", "query is required"),
    ],
)
async def test_a_spec_missing_what_argo_requires_is_a_permanent_error(
    field_name: str, value: Any, message: str
) -> None:
    metric = at(apdex_metric(), "http://127.0.0.1:1")
    metric["provider"]["skywalking"][field_name] = value
    with pytest.raises(ProviderError, match=message) as caught:
        await measure(metric)
    assert not caught.value.transient
