"""KubeClient against a tiny aiohttp server: what goes over the wire and how answers map."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from shiftd.kube.client import JsonLinesDecoder, KubeClient, WatchEvent
from shiftd.kube.errors import (
    ApiError,
    CannotConnect,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    RequestTimeout,
    UnsupportedMediaType,
)
from shiftd.kube.resources import EVENT, POD, ROLLOUT, VIRTUAL_SERVICE
from shiftd.kube.retrying import RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes


@dataclass
class FakeApiServer:
    """Records every request and answers with ``respond``."""

    respond: Handler
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                content_type=request.headers.get("Content-Type", ""),
                body=await request.read(),
            )
        )
        return await self.respond(request)


@asynccontextmanager
async def serving(respond: Handler) -> AsyncIterator[tuple[FakeApiServer, str]]:
    fake = FakeApiServer(respond)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield fake, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def client_for(
    url: str, **options: object
) -> AsyncIterator[tuple[KubeClient, list[tuple[str, int]]]]:
    requests: list[tuple[str, int]] = []
    client = KubeClient(
        Configuration(host=url),
        on_request=lambda verb, status: requests.append((verb, status)),
        **options,  # type: ignore[arg-type]
    )
    async with client:
        yield client, requests


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def status_body(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


ROLLOUT_OBJ = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
    "spec": {"unknownField": {"kept": True}},
}


async def test_get_returns_the_raw_object_with_unknown_fields_and_reports_the_request() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (fake, url), client_for(url) as (client, requests):
        obj = await client.get(ROLLOUT, "shop", "web")
    assert obj == ROLLOUT_OBJ
    assert fake.seen[0].path == "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web"
    assert requests == [("get", 200)]


async def test_through_a_configured_proxy_requests_go_to_the_proxy_in_absolute_form() -> None:
    """With a proxy, requests take aiohttp's path (the client's own connections go
    straight to the API server only)."""
    hosts: list[str] = []

    async def respond(request: web.Request) -> web.Response:
        hosts.append(request.headers.get("Host", ""))
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (fake, proxy):
        configuration = Configuration(host="http://kube.invalid:6443")
        configuration.proxy = proxy
        async with KubeClient(configuration) as client:
            assert await client.get(ROLLOUT, "shop", "web") == ROLLOUT_OBJ
            await client.patch(ROLLOUT, "shop", "web", {"spec": {}}, patch_type="merge")
    assert hosts == ["kube.invalid:6443"] * 2
    assert [seen.method for seen in fake.seen] == ["GET", "PATCH"]
    assert fake.seen[1].path == "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web"


async def test_a_token_with_a_line_break_is_refused_not_sent() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (fake, url):
        configuration = Configuration(host=url)
        configuration.api_key = {"BearerToken": "abc\r\nX-Injected: 1"}
        async with KubeClient(configuration) as client:
            with pytest.raises(ValueError, match="line break"):
                await client.get(ROLLOUT, "shop", "web")
    assert fake.seen == []


async def test_list_fills_in_api_version_and_kind_and_follows_continue_pages() -> None:
    async def respond(request: web.Request) -> web.Response:
        if request.query.get("continue") == "page2":
            return json_response(
                {"metadata": {"resourceVersion": "99"}, "items": [{"metadata": {"name": "b"}}]}
            )
        return json_response(
            {
                "metadata": {"resourceVersion": "42", "continue": "page2"},
                "items": [{"metadata": {"name": "a"}}],
            }
        )

    async with serving(respond) as (fake, url), client_for(url) as (client, requests):
        items, version = await client.list(POD, "shop", label_selector="app=web")
    assert version == "42"
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        ("v1", "Pod", "a"),
        ("v1", "Pod", "b"),
    ]
    assert fake.seen[0].path == "/api/v1/namespaces/shop/pods"
    assert fake.seen[0].query["labelSelector"] == "app=web"
    assert requests == [("list", 200), ("list", 200)]


async def test_listing_across_all_namespaces_uses_the_cluster_wide_path() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response({"metadata": {"resourceVersion": "1"}, "items": []})

    async with serving(respond) as (fake, url), client_for(url) as (client, _):
        assert await client.list(ROLLOUT) == ([], "1")
    assert fake.seen[0].path == "/apis/argoproj.io/v1alpha1/rollouts"


@pytest.mark.parametrize(
    ("patch_type", "content_type"),
    [
        ("merge", "application/merge-patch+json"),
        ("json", "application/json-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
        ("apply", "application/apply-patch+yaml"),
    ],
)
async def test_each_patch_type_is_sent_with_its_content_type(
    patch_type: str, content_type: str
) -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(ROLLOUT_OBJ)

    body: object = (
        [{"op": "replace", "path": "/spec/replicas", "value": 3}]
        if patch_type == "json"
        else {"spec": {"replicas": 3}}
    )
    async with serving(respond) as (fake, url), client_for(url) as (client, requests):
        await client.patch(
            ROLLOUT,
            "shop",
            "web",
            body,  # type: ignore[arg-type]
            patch_type=patch_type,  # type: ignore[arg-type]
            subresource="status",
        )
    seen = fake.seen[0]
    assert (seen.method, seen.content_type) == ("PATCH", content_type)
    assert seen.path.endswith("/rollouts/web/status")
    assert orjson.loads(seen.body) == body
    assert seen.query["fieldManager"] == "shiftd"
    assert ("force" in seen.query) == (patch_type == "apply")
    assert requests == [("patch", 200)]


async def test_create_replace_and_delete_use_post_put_and_delete() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(
            ROLLOUT_OBJ if request.method != "DELETE" else status_body(200, "", "")
        )

    async with serving(respond) as (fake, url), client_for(url) as (client, requests):
        await client.create(ROLLOUT, "shop", ROLLOUT_OBJ)
        await client.replace(ROLLOUT, "shop", "web", ROLLOUT_OBJ)
        await client.delete(ROLLOUT, "shop", "web", propagation_policy="Background")
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in fake.seen] == [
        ("POST", "rollouts"),
        ("PUT", "web"),
        ("DELETE", "web"),
    ]
    assert fake.seen[2].query["propagationPolicy"] == "Background"
    assert requests == [("create", 200), ("update", 200), ("delete", 200)]


@pytest.mark.parametrize(
    ("code", "reason", "error_type"),
    [
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", Conflict),
        (410, "Expired", Gone),
        (415, "UnsupportedMediaType", UnsupportedMediaType),
        (422, "Invalid", Invalid),
        (400, "BadRequest", ApiError),
    ],
)
async def test_an_error_status_raises_the_matching_api_error(
    code: int, reason: str, error_type: type[ApiError]
) -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(status_body(code, reason, "it went wrong"), status=code)

    async with serving(respond) as (_, url), client_for(url) as (client, requests):
        with pytest.raises(ApiError) as caught:
            await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge")
    assert type(caught.value) is error_type
    assert (caught.value.status, caught.value.reason, caught.value.message) == (
        code,
        reason,
        "it went wrong",
    )
    assert requests == [("patch", code)]


async def test_a_connection_failure_on_a_read_is_retried_a_few_times_and_each_try_reported() -> (
    None
):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(attempts=3, base=0.001)
    async with client_for(f"http://127.0.0.1:{port}", retry_policy=policy) as (client, requests):
        with pytest.raises(CannotConnect):
            await client.get(ROLLOUT, "shop", "web")
        with pytest.raises(CannotConnect):  # never sent, so safe to send again
            await client.create(ROLLOUT, "shop", ROLLOUT_OBJ)
    assert requests == [("get", 0)] * 3 + [("create", 0)] * 3


async def test_a_write_that_outlives_its_timeout_raises_request_timeout_unretried() -> None:
    release = asyncio.Event()

    async def respond(request: web.Request) -> web.Response:
        await release.wait()
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (_, url):
        try:
            async with client_for(url, request_timeout=0.1) as (client, requests):
                with pytest.raises(RequestTimeout):
                    await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge")
        finally:
            release.set()
    assert requests == [("patch", 0)]  # it may have been applied: the controller replans


def watch_line(event_type: str, obj: dict[str, object]) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


async def stream(request: web.Request, *chunks: bytes) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "application/json"
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def collect(client: KubeClient, **options: object) -> list[WatchEvent]:
    async with aclosing(
        client.watch(ROLLOUT, "shop", resource_version="7", **options)  # type: ignore[arg-type]
    ) as events:
        return [event async for event in events]


async def test_watch_yields_events_split_across_chunks_and_asks_for_bookmarks() -> None:
    added = watch_line("ADDED", {"metadata": {"name": "a", "resourceVersion": "8"}})
    bookmark = watch_line("BOOKMARK", {"kind": "Rollout", "metadata": {"resourceVersion": "9"}})

    async def respond(request: web.Request) -> web.StreamResponse:
        return await stream(request, added[:10], added[10:] + bookmark[:5], bookmark[5:])

    async with serving(respond) as (fake, url), client_for(url) as (client, requests):
        events = await collect(client, timeout_seconds=60)
    assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in events] == [
        ("ADDED", "8"),
        ("BOOKMARK", "9"),
    ]
    assert events[0].object["kind"] == "Rollout"
    assert fake.seen[0].query == {
        "watch": "true",
        "resourceVersion": "7",
        "timeoutSeconds": "60",
        "allowWatchBookmarks": "true",
    }
    assert requests == [("watch", 200)]


async def test_a_watch_error_event_with_code_410_raises_gone() -> None:
    async def respond(request: web.Request) -> web.StreamResponse:
        return await stream(
            request,
            watch_line("ADDED", {"metadata": {"name": "a", "resourceVersion": "8"}}),
            watch_line("ERROR", status_body(410, "Expired", "too old resource version: 7")),
        )

    async with serving(respond) as (_, url), client_for(url) as (client, _):
        with pytest.raises(Gone, match="too old"):
            await collect(client)


async def test_a_watch_answered_with_http_410_raises_gone() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(status_body(410, "Gone", "expired"), status=410)

    async with serving(respond) as (_, url), client_for(url) as (client, requests):
        with pytest.raises(Gone):
            await collect(client)
    assert requests == [("watch", 410)]


async def test_watches_are_not_held_back_by_the_rate_limit() -> None:
    async def respond(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch"):
            return await stream(request)
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (_, url), client_for(url, qps=0.001, burst=1) as (client, _):
        await client.get(ROLLOUT, "shop", "web")  # spends the only token
        assert await collect(client) == []


@pytest.mark.parametrize(
    ("chunks", "documents"),
    [
        ([b'{"a":1}\n{"b":2}\n'], [{"a": 1}, {"b": 2}]),
        ([b'{"a"', b":1}", b"\n"], [{"a": 1}]),
        ([b'{"a":1}\n\n', b'{"b":', b"2}"], [{"a": 1}, {"b": 2}]),
        ([b"\n", b"  \n"], []),
    ],
)
def test_json_lines_decoder_reassembles_documents_cut_anywhere(
    chunks: list[bytes], documents: list[object]
) -> None:
    decoder = JsonLinesDecoder()
    lines = [line for chunk in chunks for line in decoder.lines(chunk)]
    assert [orjson.loads(line) for line in [*lines, *decoder.rest()]] == documents


def test_json_lines_decoder_gives_the_streams_lines_however_it_is_cut() -> None:
    stream = b"".join(random.Random(7).choice([b'{"a":1}', b"\n", b"  ", b"\n\n", b"[2]"])
                      for _ in range(400))
    whole = [line for line in stream.split(b"\n") if line.strip()]
    rng = random.Random(11)
    for _ in range(200):
        cuts = sorted(rng.sample(range(len(stream) + 1), k=rng.randint(0, 30)))
        decoder = JsonLinesDecoder()
        lines = [line for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)
                 for line in decoder.lines(stream[start:end])]
        assert [*lines, *decoder.rest()] == whole


async def test_a_strategic_patch_on_a_custom_resource_maps_415() -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(
            status_body(
                415, "UnsupportedMediaType", "the body of the request was in an unknown format"
            ),
            status=415,
        )

    async with serving(respond) as (_, url), client_for(url) as (client, _):
        with pytest.raises(UnsupportedMediaType):
            await client.patch(VIRTUAL_SERVICE, "shop", "web", {}, patch_type="strategic")


async def test_a_write_whose_answered_version_is_cached_returns_the_cached_copy() -> None:
    cached = {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"}}
    asked: list[tuple[str, str | None, str, str]] = []

    def holding(kind: object, namespace: str | None, name: str, version: str) -> object:
        asked.append((getattr(kind, "plural", ""), namespace, name, version))
        return cached if version == "7" else None

    answers = iter([ROLLOUT_OBJ, {**ROLLOUT_OBJ, "metadata": {
        "name": "web", "namespace": "shop", "resourceVersion": "8"}}])

    async def respond(request: web.Request) -> web.Response:
        return json_response(next(answers))

    remembered: list[object] = []
    async with serving(respond) as (_, url), client_for(url) as (client, requests):
        client.reuse_cached_answers(holding,  # type: ignore[arg-type]
                                    remember=lambda kind, answer: remembered.append(answer))
        first = await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge",
                                   subresource="status")
        second = await client.replace(ROLLOUT, "shop", "web", ROLLOUT_OBJ)
    assert first is cached
    assert second["metadata"]["resourceVersion"] == "8"
    assert second["spec"] == {"unknownField": {"kept": True}}
    assert remembered == [second]  # the parsed answer is cached before the caller resumes
    assert asked == [("rollouts", "shop", "web", "7"), ("rollouts", "shop", "web", "8")]
    assert requests == [("patch", 200), ("update", 200)]


async def test_a_write_whose_answer_is_not_read_returns_nothing_but_still_raises_errors(
) -> None:
    answers = iter([(b"not even JSON", 201), (b"{}", 200),
                    (orjson.dumps(status_body(404, "NotFound", "gone")), 404)])

    async def respond(request: web.Request) -> web.Response:
        body, status = next(answers)
        return web.Response(body=body, status=status, content_type="application/json")

    remembered: list[object] = []
    async with serving(respond) as (_, url), client_for(url) as (client, requests):
        client.reuse_cached_answers(lambda *_: None,
                                    remember=lambda kind, answer: remembered.append(answer))
        # the body is never parsed: a success is all the caller asked to know
        assert await client.create(EVENT, "shop", {"kind": "Event"}, parse_answer=False) == {}
        assert await client.patch(EVENT, "shop", "e", {"count": 2}, patch_type="merge",
                                  parse_answer=False) == {}
        with pytest.raises(NotFound):
            await client.patch(EVENT, "shop", "e", {"count": 3}, patch_type="merge",
                               parse_answer=False)
    assert remembered == []  # nothing unread is cached
    assert requests == [("create", 201), ("patch", 200), ("patch", 404)]


async def test_reads_and_creates_are_always_parsed_even_when_the_cache_holds_the_version(
) -> None:
    async def respond(request: web.Request) -> web.Response:
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (_, url), client_for(url) as (client, _requests):
        client.reuse_cached_answers(lambda *_: {"cached": True}, remember=lambda *_: None)
        assert await client.get(ROLLOUT, "shop", "web") == ROLLOUT_OBJ
        assert await client.create(ROLLOUT, "shop", ROLLOUT_OBJ) == ROLLOUT_OBJ


async def test_every_request_carries_the_token_the_refresh_hook_left() -> None:
    seen: list[str] = []

    async def respond(request: web.Request) -> web.Response:
        seen.append(request.headers.get("authorization", ""))
        return json_response(ROLLOUT_OBJ)

    async with serving(respond) as (_, url):
        config = Configuration(host=url)
        config.api_key_prefix["BearerToken"] = "Bearer"
        config.api_key["BearerToken"] = "first"
        tokens = iter(["second", "third"])

        def refresh(target: Configuration) -> None:
            target.api_key["BearerToken"] = next(tokens)

        async with KubeClient(config) as client:
            await client.get(ROLLOUT, "shop", "web")
            config.refresh_api_key_hook = refresh
            await client.get(ROLLOUT, "shop", "web")
            await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge")
    assert seen == ["Bearer first", "Bearer second", "Bearer third"]


async def test_the_watch_event_of_a_parsed_and_cached_answer_comes_unparsed() -> None:
    cached: dict[str, str] = {}  # name -> the version the cache holds

    def holding(kind: object, namespace: str | None, name: str, version: str) -> object:
        return {"cached": True} if cached.get(name) == version else None

    full = {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "8"},
            "spec": {"replicas": 3}}
    other = {"metadata": {"name": "api", "namespace": "shop", "resourceVersion": "9"}}

    async def respond(request: web.Request) -> web.StreamResponse:
        if request.method == "PATCH":
            return json_response(full)
        return await stream(request, watch_line("MODIFIED", full) + watch_line(
            "MODIFIED", other), watch_line("MODIFIED", full))

    async with serving(respond) as (_, url), client_for(url) as (client, _requests):
        client.reuse_cached_answers(  # type: ignore[arg-type]
            holding, remember=lambda kind, answer: cached.update(web="8"))
        answer = await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge")
        events = await collect(client)
    assert answer == full
    assert [event.object for event in events] == [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
         "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "8"}},
        {**other, "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"},
        {**full, "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"},  # used once
    ]
