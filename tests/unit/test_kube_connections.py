"""The client's keep-alive HTTP/1.1 pool against servers that misbehave on purpose: reuse,
idle connections the server closed, answers cut short or never sent, cancellation, limits,
chunked and gzip bodies."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from aiohttp import web

from shiftd.kube.connections import ConnectionPool, http1_request
from shiftd.kube.errors import CannotConnect, ConnectionFailed, RequestTimeout
from tests.integration.harness import wait_for

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def get(path: str = "/api") -> bytes:
    return http1_request("GET", path, b"Host: test\r\n", None)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """A request's head (and no body: the tests send GETs)."""
    return await reader.readuntil(b"\r\n\r\n")


class RawServer:
    """A TCP server whose handler writes whatever bytes a test wants; counts connections."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.closed = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            self.closed += 1
            writer.close()


@asynccontextmanager
async def raw_server(serve: Serve) -> AsyncIterator[tuple[RawServer, int]]:
    server = RawServer(serve)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, port
    finally:
        listening.close()


def pool_for(port: int, *, limit: int = 4, timeout: float = 5.0) -> ConnectionPool:
    return ConnectionPool(host="127.0.0.1", port=port, ssl_context=None, server_hostname=None,
                          limit=limit, request_timeout=timeout)


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()


async def test_a_kept_alive_connection_serves_the_next_request() -> None:
    async with raw_server(keep_answering) as (server, port):
        pool = pool_for(port)
        for _ in range(3):
            answer = await pool.request(get())
            assert (answer.status, answer.reason, answer.body) == (200, "OK", b"{}")
            assert answer.headers["content-type"] == "application/json"
        assert server.connections == 1
        pool.close()


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    async def answer_once_then_close(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)  # keep-alive by HTTP/1.1's default, then closed anyway
        await writer.drain()

    async with raw_server(answer_once_then_close) as (server, port):
        pool = pool_for(port)
        assert (await pool.request(get())).status == 200
        await wait_for(lambda: server.closed == 1, what="the server closed its end")
        await wait_for(lambda: pool.idle_connections == 0, what="the pool noticed the EOF")
        assert (await pool.request(get())).status == 200  # not ConnectionFailed
        assert server.connections == 2
        pool.close()


async def test_a_connection_idle_too_long_is_closed_without_waiting_for_a_request() -> None:
    async with raw_server(keep_answering) as (server, port):
        pool = ConnectionPool(host="127.0.0.1", port=port, ssl_context=None,
                              server_hostname=None, limit=4, request_timeout=5.0,
                              idle_seconds=0.05)
        assert (await pool.request(get())).status == 200
        assert pool.idle_connections == 1
        await wait_for(lambda: server.closed == 1, what="the idle connection closed")
        assert pool.idle_connections == 0
        assert (await pool.request(get())).status == 200  # a new one
        assert server.connections == 2
        pool.close()


async def test_a_connection_close_answer_is_not_kept() -> None:
    async def answer_and_say_close(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        await reader.read()  # the client closes first

    async with raw_server(answer_and_say_close) as (server, port):
        pool = pool_for(port)
        assert (await pool.request(get())).body == b"{}"
        assert pool.idle_connections == 0
        await wait_for(lambda: server.closed == 1, what="the client closed the connection")
        pool.close()


async def test_an_answer_cut_short_raises_connection_failed() -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        await writer.drain()

    async with raw_server(cut_short) as (_, port):
        pool = pool_for(port)
        with pytest.raises(ConnectionFailed, match="closed before the answer ended"):
            await pool.request(get())
        assert pool.idle_connections == 0
        pool.close()


async def test_garbage_instead_of_http_raises_connection_failed() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        await reader.read()

    async with raw_server(garbage) as (_, port):
        pool = pool_for(port)
        with pytest.raises(ConnectionFailed, match="unreadable answer"):
            await pool.request(get())
        pool.close()


async def test_no_answer_within_the_timeout_raises_request_timeout_and_drops_it() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up and closes

    async with raw_server(never_answer) as (server, port):
        pool = pool_for(port, timeout=0.2)
        with pytest.raises(RequestTimeout):
            await pool.request(get())
        await wait_for(lambda: server.closed == 1, what="the timed-out connection was closed")
        assert pool.idle_connections == 0
        pool.close()


async def test_a_cancelled_request_drops_its_connection() -> None:
    requested = anyio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        requested.set()
        await reader.read()

    async with raw_server(never_answer) as (server, port):
        pool = pool_for(port)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.request, get())
            await requested.wait()
            group.cancel_scope.cancel()
        await wait_for(lambda: server.closed == 1, what="the cancelled request's connection closed")
        assert pool.idle_connections == 0
        pool.close()


async def test_nothing_listening_raises_cannot_connect() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    pool = pool_for(port)
    with pytest.raises(CannotConnect):
        await pool.request(get())


async def test_requests_beyond_the_limit_wait_for_a_free_connection() -> None:
    release = anyio.Event()

    async def answer_when_released(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await release.wait()
            writer.write(OK)
            await writer.drain()

    async with raw_server(answer_when_released) as (server, port):
        pool = pool_for(port, limit=2)
        answers: list[int] = []

        async def one() -> None:
            answers.append((await pool.request(get())).status)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
            await wait_for(lambda: server.connections == 2, what="two connections made")
            release.set()
        assert answers == [200] * 5
        assert server.most_open == 2 and server.connections == 2
        pool.close()


async def test_chunked_and_gzip_answers_are_read_whole() -> None:
    document = b'{"items":[' + b",".join(b'{"n":%d}' % n for n in range(2000)) + b"]}"

    async def handle(request: web.Request) -> web.StreamResponse:
        assert request.headers["Accept-Encoding"] == "gzip"
        if request.path == "/gzip":
            return web.Response(body=gzip.compress(document),
                                headers={"Content-Encoding": "gzip"})
        response = web.StreamResponse()  # no length: chunked
        await response.prepare(request)
        for start in range(0, len(document), 1000):
            await response.write(document[start:start + 1000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    head = b"Host: test\r\nAccept-Encoding: gzip\r\n"
    try:
        pool = pool_for(port)
        for path in ("/chunked", "/gzip"):
            answer = await pool.request(http1_request("GET", path, head, None))
            assert answer.body == document, path
        pool.close()
    finally:
        await runner.cleanup()


def test_a_request_carries_its_length_unless_it_is_a_bodyless_get() -> None:
    assert http1_request("GET", "/a?b=c", b"Host: h\r\n", None) == \
        b"GET /a?b=c HTTP/1.1\r\nHost: h\r\n\r\n"
    assert http1_request("PATCH", "/a", b"Host: h\r\n", b'{"x":1}') == \
        b'PATCH /a HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n{"x":1}'
    assert http1_request("POST", "/a", b"", None).endswith(b"Content-Length: 0\r\n\r\n")
