"""The client's requests (watches excepted) over a pool of keep-alive HTTP/1.1 connections.

aiohttp spends about 160 us of CPU on a request beyond what its bytes cost (measured: 208
against 50 us per PATCH to the emulator over plain HTTP, 245 against 72 us over TLS), which
at two writes per Rollout step was over a third of the daemon's step. A request here is one
``transport.write`` of bytes built from a prepared header block, and its answer is parsed by
httptools (llhttp, the parser uvicorn uses) as it arrives; a connection serves one request
at a time and goes back to the pool when the answer ended and the server keeps it alive.

Semantics the client's retry rules rely on (:mod:`shiftd.kube.retrying`):

* a connection that could not be made raises ``CannotConnect`` (never applied: writes too
  are sent again);
* an answer lost mid-flight (the connection closed or broke before the answer ended) raises
  ``ConnectionFailed``; one that outlives ``timeout`` raises ``RequestTimeout``. The
  connection is dropped either way, as it is when the caller is cancelled mid-request;
* a pooled connection the server closed while it was idle is noticed (its EOF) and dropped
  before use, and one idle longer than ``idle_seconds`` is closed (by a timer, or when the
  next request finds it) and not reused.

Proxies are aiohttp's business: the client uses this pool only when no proxy is configured.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import NamedTuple, cast

import httptools
from kubernetes_asyncio import client as k8s_client
from yarl import URL

from shiftd.kube.errors import CannotConnect, ConnectionFailed, RequestTimeout

IDLE_SECONDS = 15.0  # aiohttp's keepalive_timeout: an idle connection older than this is closed


class Answer(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is reading, if any."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Answer] | None = None
        self._reason = b""
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._keep_alive = True

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but has its methods
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionFailed(f"unreadable answer: {error}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close: a half-closed connection serves no further request

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionFailed(f"connection closed before the answer ended: {exc}"
                                    if exc else "connection closed before the answer ended"))

    # -- httptools callbacks ---------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = bool(self._parser.should_keep_alive())
        waiter, self._waiter = self._waiter, None
        body = b"".join(self._chunks)
        self._chunks = []
        if waiter is None or waiter.done():
            return
        if self._headers.get("content-encoding") == "gzip":
            try:
                body = zlib.decompress(body, wbits=31)
            except zlib.error as error:
                waiter.set_exception(ConnectionFailed(f"unreadable gzip body: {error}"))
                return
        waiter.set_result(Answer(self._parser.get_status_code(),
                                 self._reason.decode("latin-1"), self._headers, body))

    # -- requests --------------------------------------------------------------------------
    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _expire(self, waiter: asyncio.Future[Answer], timeout: float) -> None:
        if not waiter.done():
            waiter.set_exception(RequestTimeout(f"no answer within {timeout:g}s"))

    async def exchange(self, request: bytes, *, answer_within: float) -> Answer:
        """Send ``request`` and return its answer; the connection is reusable afterwards
        only if ``reusable``."""
        assert self.transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter, self._reason, self._headers, self._keep_alive = waiter, b"", {}, True
        timer = loop.call_later(answer_within, self._expire, waiter, answer_within)
        try:
            self.transport.write(request)
            return await waiter
        except BaseException:
            self.close()  # timed out, broken or cancelled mid-answer: never reused
            raise
        finally:
            timer.cancel()

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed and self._waiter is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # no graceful TLS shutdown to wait for (nothing in flight)


_BODYLESS = frozenset({"GET", "DELETE"})


def http1_request(method: str, target: str, head: bytes, body: bytes | None) -> bytes:
    """A request's bytes: its line, ``head`` (header lines, each ending in CRLF), and the
    body with its length (none for a GET or DELETE without one)."""
    line = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
    if body is None and method in _BODYLESS:
        return b"".join((line, head, b"\r\n"))
    payload = body or b""
    return b"".join((line, head, b"Content-Length: %d\r\n\r\n" % len(payload), payload))


def tls_context(configuration: k8s_client.Configuration) -> ssl.SSLContext:
    """The TLS settings kubernetes_asyncio gives its own connector (``RESTClientObject``):
    the configured CA (else the system's), the client certificate, and verification unless
    ``verify_ssl`` is off."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.disable_strict_ssl_verification:
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


class ConnectionPool:
    """Up to ``limit`` connections to one API server, reused most recently idle first."""

    def __init__(self, *, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 server_hostname: str | None, limit: int, request_timeout: float,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        """``request_timeout`` bounds connecting, and then the answer."""
        self._host, self._port = host, port
        self._ssl = ssl_context
        self._server_hostname = server_hostname if ssl_context is not None else None
        self._timeout = request_timeout
        self._idle_seconds = idle_seconds
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max(1, limit))
        self._sweep: asyncio.TimerHandle | None = None  # the next close of expired ones

    @classmethod
    def for_configuration(cls, configuration: k8s_client.Configuration, *,
                          server_hostname: str | None, request_timeout: float
                          ) -> ConnectionPool:
        """Connections to the configured API server, as many at once as kubernetes_asyncio's
        connector allows (``connection_pool_maxsize``), with its TLS settings."""
        url = URL(str(configuration.host))
        secure = url.scheme == "https"
        return cls(host=url.host or "", port=url.port or (443 if secure else 80),
                   ssl_context=tls_context(configuration) if secure else None,
                   server_hostname=server_hostname,
                   limit=configuration.connection_pool_maxsize or 100,
                   request_timeout=request_timeout)

    @property
    def idle_connections(self) -> int:
        """Pooled connections open and waiting for a request."""
        return sum(1 for connection in self._idle if not connection.closed)

    async def request(self, request: bytes) -> Answer:
        """One request on a pooled (or new) connection; raises the errors above."""
        async with self._slots:
            connection = self._pooled() or await self._connect()
            self._busy.add(connection)
            try:
                answer = await connection.exchange(request, answer_within=self._timeout)
            finally:
                self._busy.discard(connection)
            if connection.reusable:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
                self._sweep_later()
            else:
                connection.close()
            return answer

    def _sweep_later(self) -> None:
        """Close idle connections once they are too old, even if no request comes (as
        aiohttp's connector does): an idle daemon holds no connections, nor their buffers."""
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self._idle_seconds,
                                                                self._close_expired)

    def _usable(self, connection: _Connection, now: float) -> bool:
        """Open, and idle for less than ``idle_seconds``."""
        return not connection.closed and connection.idle_since >= now - self._idle_seconds

    def _close_expired(self) -> None:
        self._sweep = None
        now = time.monotonic()
        for connection in self._idle:
            if not self._usable(connection, now):
                connection.close()
        self._idle = [connection for connection in self._idle if not connection.closed]
        if self._idle:
            self._sweep_later()

    def _pooled(self) -> _Connection | None:
        idle, now = self._idle, time.monotonic()
        while idle:
            connection = idle.pop()
            if self._usable(connection, now):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                _, connection = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._server_hostname)
        except TimeoutError as error:
            raise CannotConnect(f"connecting to {self._host}:{self._port} timed out") \
                from error
        except (OSError, ssl.SSLError) as error:
            raise CannotConnect(f"cannot connect to {self._host}:{self._port}: {error}") \
                from error
        return connection

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in [*self._idle, *self._busy]:
            connection.close()
        self._idle.clear()
        self._busy.clear()


__all__ = ["IDLE_SECONDS", "Answer", "ConnectionPool", "http1_request", "tls_context"]
