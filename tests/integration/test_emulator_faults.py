"""The emulator's fault injection, seen from a plain HTTP client: errors by verb and resource,
429 with Retry-After, unanswered requests, broken, short and expired watches, no bookmarks,
and the same faults again from the same seed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import orjson
import pytest

from shiftd.sim import ApiEmulator, RequestFaults, WatchFaults

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
SERVICES = "/api/v1/namespaces/default/services"


@pytest.fixture
async def api() -> AsyncIterator[ApiEmulator]:
    async with ApiEmulator(bookmark_interval=0.05, fault_seed=7) as emulator:
        yield emulator


@pytest.fixture
async def http(api: ApiEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url) as session:
        yield session


def service(name: str) -> Obj:
    return {"metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


async def create(http: aiohttp.ClientSession, name: str) -> Obj:
    async with http.post(SERVICES, json=service(name)) as response:
        assert response.status == 201
        created: Obj = await response.json()
        return created


async def patch_status(http: aiohttp.ClientSession, path: str) -> int:
    async with http.patch(path, data=b'{"metadata":{"labels":{"x":"y"}}}',
                          headers={"Content-Type": "application/merge-patch+json"}) as response:
        return response.status


async def watch_lines(http: aiohttp.ClientSession, **query: str) -> list[Obj]:
    """Every event of a watch of Services until the server ends it."""
    params = {"watch": "true", "timeoutSeconds": "1", **query}
    async with http.get(SERVICES, params=params) as response:
        body = await response.read()
    return [orjson.loads(line) for line in body.splitlines() if line]


async def test_a_429_carries_retry_after_and_hits_only_the_verb_and_resource_named(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    await create(http, "web")
    api.faults.configure(RequestFaults(1.0, errors=("429",), verbs=frozenset({"patch"}),
                                       resources=frozenset({"services"}), retry_after=3))
    async with http.patch(f"{SERVICES}/web", data=b"{}",
                          headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        status = await response.json()
    assert (status["reason"], status["details"]["retryAfterSeconds"]) == ("TooManyRequests", 3)
    async with http.get(f"{SERVICES}/web") as response:
        assert response.status == 200
    assert await patch_status(http, "/api/v1/namespaces/default") == 200
    assert [(f.kind, f.verb, f.resource) for f in api.faults.injected] == [
        ("429", "patch", "services")]


async def test_a_conflict_is_never_drawn_for_a_read(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    api.faults.configure(RequestFaults(1.0, errors=("409",)))
    async with http.get(SERVICES) as response:
        assert response.status == 200
    async with http.post(SERVICES, json=service("web")) as response:
        assert response.status == 409
        assert (await response.json())["reason"] == "Conflict"


async def statuses_from_seed(seed: int) -> list[int]:
    async with ApiEmulator(fault_seed=seed) as api, aiohttp.ClientSession(api.url) as http:
        api.faults.configure(RequestFaults(0.3, errors=("409", "500", "503")))
        statuses = []
        for index in range(40):
            async with http.post(SERVICES, json=service(f"s{index}")) as response:
                statuses.append(response.status)
        return statuses


async def test_the_same_seed_injects_the_same_faults_into_the_same_requests() -> None:
    first, again = await statuses_from_seed(11), await statuses_from_seed(11)
    assert first == again
    assert {201, 409, 500, 503} <= set(first)
    assert first != await statuses_from_seed(12)


async def test_an_unanswered_request_runs_into_the_clients_timeout(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    api.faults.configure(RequestFaults(1.0, errors=("hang",), verbs=frozenset({"list"})))
    with pytest.raises(TimeoutError):
        async with http.get(SERVICES, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    assert [fault.kind for fault in api.faults.injected] == ["hang"]
    api.faults.clear()
    async with http.get(SERVICES) as response:
        assert response.status == 200


async def test_a_watch_closed_after_n_events_ends_cleanly(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    for name in ("a", "b", "c"):
        await create(http, name)
    api.faults.configure(watches=WatchFaults(close_after=2))
    events = await watch_lines(http)
    assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
    assert api.faults.counts()["watch-closed"] == 1


async def test_a_watch_cut_mid_event_breaks_the_connection_after_half_a_line(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    await create(http, "a")
    api.faults.configure(watches=WatchFaults(cut_share=1.0, cut_within=1))
    with anyio.fail_after(5), pytest.raises(aiohttp.ClientPayloadError):
        await watch_lines(http)
    assert api.faults.counts()["watch-cut"] == 1


async def test_a_resumed_watch_can_be_answered_410_expired(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    created = await create(http, "a")
    api.faults.configure(watches=WatchFaults(expire_share=1.0))
    assert [e["type"] for e in await watch_lines(http)] == ["ADDED"]  # a fresh watch is spared
    events = await watch_lines(http, resourceVersion=created["metadata"]["resourceVersion"])
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


async def test_withheld_bookmarks_are_not_sent(
    api: ApiEmulator, http: aiohttp.ClientSession,
) -> None:
    created = await create(http, "a")
    since = created["metadata"]["resourceVersion"]
    normal = await watch_lines(http, resourceVersion=since, allowWatchBookmarks="true")
    assert "BOOKMARK" in {e["type"] for e in normal}
    api.faults.configure(watches=WatchFaults(withhold_bookmarks=True))
    assert await watch_lines(http, resourceVersion=since, allowWatchBookmarks="true") == []
