"""The aiohttp side of the client: proxies, reading bodies and streams, abandoning streams.

Over TLS, closing a connection starts an SSL shutdown that waits for the server's reply; a
watch the client abandons (cancelled, or closed early) is still streaming on the server, so
that reply may never come before the event loop ends, and the socket would leak (a
``ResourceWarning: unclosed <socket>``). ``abandon`` therefore aborts such a connection's
transport at once instead of closing it gracefully.
"""

from __future__ import annotations

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from shiftd.kube.connections import Answer
from shiftd.kube.errors import ConnectionFailed, RequestTimeout


def proxy_for(host: str, configured: str | None) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy to reach ``host`` through: the configured one, else the one the environment
    names (``HTTPS_PROXY``/``HTTP_PROXY``, honouring ``NO_PROXY``), as an aiohttp session
    that trusts the environment chooses it for each request."""
    if configured:
        return configured, None
    try:
        proxy, auth = get_env_proxy_for_url(URL(host))
    except LookupError:
        return None, None
    return str(proxy), auth


async def read_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except TimeoutError as exc:
        raise RequestTimeout(f"reading {response.url}: timed out") from exc
    except aiohttp.ClientError as exc:
        raise ConnectionFailed(f"reading {response.url}: {exc}") from exc


async def read_answer(response: aiohttp.ClientResponse) -> Answer:
    """A response read to its end (its connection aborted if that fails or is cancelled)."""
    try:
        data = await read_body(response)
    except BaseException:
        abandon(response)  # no SSL shutdown to wait for: see above
        raise
    response.release()
    retry_after = response.headers.get("Retry-After")
    return Answer(response.status, response.reason or "",
                  {} if retry_after is None else {"retry-after": retry_after}, data)


async def read_chunk(response: aiohttp.ClientResponse) -> bytes:
    """The next bytes of a streamed body; ``b""`` at its end."""
    try:
        return await response.content.readany()
    except TimeoutError as exc:
        raise RequestTimeout(f"watch {response.url}: no data within the read timeout") from exc
    except aiohttp.ClientError as exc:
        raise ConnectionFailed(f"watch {response.url}: {exc}") from exc


def abandon(response: aiohttp.ClientResponse) -> None:
    """Drop a response whose body will not be read to its end: abort its connection's
    transport (no SSL shutdown handshake to wait for), then release the response."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is not None:
        transport.abort()
    response.close()


__all__ = ["abandon", "proxy_for", "read_answer", "read_body", "read_chunk"]
